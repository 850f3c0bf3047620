/**
 * Times LoRA training steps on a real model folder with nothing but the engine calls every
 * version of webtune has had (load, lossAndGradients, readLossSum, AdamW), so that
 * scripts/bench-step.mjs can run this same file against an old checkout's engine and this one's.
 * A step is recorded, its loss read back and AdamW applied, then the device drained.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import { LoraAdapter } from '../lora/adapter';
import { validateLoraConfig } from '../lora/config';
import { LlamaModel } from '../model/llama';
import { nodeFileSource } from '../model/node-file-source';
import { openModel } from '../model/weights';
import { makeBatch } from '../train/batch';
import { AdamW, DEFAULT_ADAMW } from '../train/optimizer';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: '../shared/models/stories260K' },
      seq: { type: 'string', default: '198' },
      batch: { type: 'string', default: '4' },
      r: { type: 'string', default: '8' },
      targets: { type: 'string', default: 'q_proj,k_proj,v_proj' },
      warmup: { type: 'string', default: '1' },
      steps: { type: 'string', default: '2' },
    },
  });
  const [T, B, r, warmup, steps] = [values.seq, values.batch, values.r, values.warmup, values.steps].map(Number);
  const opened = await openModel(nodeFileSource(resolve(values.model)));
  const gpu = new Gpu(await createNodeDevice());
  const model = await LlamaModel.load(gpu, opened.weights);
  const adapter = new LoraAdapter(gpu, opened.config, validateLoraConfig({ r, alpha: 2 * r, targets: values.targets.split(',') }));
  adapter.initPeft(0);
  const optimizer = new AdamW(gpu, adapter);
  // A fixed linear congruential sequence of token ids: the same rows for every engine version.
  let state = 12345;
  const token = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % opened.config.vocabSize;
  };
  const rows = Array.from({ length: B }, () => Array.from({ length: T }, token));
  const batch = makeBatch(rows, rows);
  const stepMs: number[] = [];
  const losses: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const start = performance.now();
    model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount });
    losses.push((await model.readLossSum(batch)) / batch.targetCount);
    optimizer.apply(DEFAULT_ADAMW);
    await gpu.sync();
    if (i >= warmup) stepMs.push(performance.now() - start);
  }
  process.stdout.write(`${JSON.stringify({ seq: T, batch: B, r, targets: values.targets, warmup, steps, step_ms: stepMs, losses })}\n`);
  return 0;
}

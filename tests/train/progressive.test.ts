import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJsonlBytes } from '../../src/data/jsonl';
import type { DatasetRow } from '../../src/data/types';
import { evaluate } from '../../src/eval/evaluate';
import { LoraAdapter, LoraWeights } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { prepareRunData, prepTokenizerFor } from '../../src/train/pipeline';
import { InitAdapterError, ProgressiveError, runProgressive, startingAdapter } from '../../src/train/progressive';
import { validateTrainSettings } from '../../src/train/settings';
import { batchExamples, type Example } from '../../src/data/prepare';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { SHARED, STORIES_260K } from '../helpers/paths';

function jsonl(name: string): DatasetRow[] {
  return parseJsonlBytes(new Uint8Array(readFileSync(resolve(SHARED, 'data', name))), { fileName: name }).rows;
}

// Short rows and few steps: the CPU device is slow.
const MAX_LENGTH = 40;
const text = (t: string): DatasetRow => ({ kind: 'text', text: t });
const phase1Rows = jsonl('zog_stories_train.jsonl').slice(0, 2);
const phase1Eval = jsonl('zog_stories_eval.jsonl').slice(0, 2);
const phase2Rows = [text('The robot Bip paints the sky blue every morning.'), text('Bip the robot likes blue paint and tall ladders.')];
const phase2Eval = [text('Every morning Bip paints the sky blue.')];

async function setup() {
  const opened = await openModel(nodeFileSource(STORIES_260K));
  const gpu = await testGpu();
  return { opened, gpu, model: await LlamaModel.load(gpu, opened.weights), tok: prepTokenizerFor(opened) };
}

/** Mean token loss of all the examples in one batch (the order of rows does not change it). */
async function batchLoss(model: LlamaModel, adapter: LoraWeights | null, examples: Example[]) {
  const [padded] = batchExamples(examples, examples.length, 0);
  const batch = makeBatch(padded.inputIds, padded.labels);
  model.loss(batch, adapter);
  return (await model.readLossSum(batch)) / batch.targetCount;
}

describe('progressive training', () => {
  it('phase 2 starts from the phase-1 weights and the forgetting report holds the real eval losses', { timeout: 600_000 }, async () => {
    const { gpu, model, tok } = await setup();
    const lora = { r: 4, alpha: 8, targets: ['q_proj', 'v_proj'] as never };
    // One micro-batch holds all training rows, so each phase's first step scores exactly them.
    const phase1Settings = validateTrainSettings({
      lora,
      lr: 1e-2,
      epochs: 2,
      batchSize: 2,
      maxLength: MAX_LENGTH,
      checkpointEvery: 0,
      seed: 3,
    });
    const phase2Settings = validateTrainSettings({
      lora,
      lr: 1e-2,
      epochs: 1,
      batchSize: 2,
      maxLength: MAX_LENGTH,
      checkpointEvery: 0,
      seed: 4,
    });
    const phases: string[] = [];
    const result = await runProgressive(gpu, model, tok, {
      phase1: { rows: phase1Rows, evalRows: phase1Eval, settings: phase1Settings },
      phase2: { rows: phase2Rows, evalRows: phase2Eval, settings: phase2Settings },
      hooks: {
        onPhase: (phase, stage) => phases.push(`${phase} ${stage}`),
        onProgress: (phase, p) => phases.push(`${phase} step ${p.step}`),
      },
    });
    expect(result.status).toBe('completed');
    expect(phases).toEqual([
      '1 eval-before',
      '1 training',
      '1 step 1',
      '1 step 2',
      '1 eval-after',
      '2 eval-before',
      '2 training',
      '2 step 1',
      '2 eval-after',
    ]);
    expect(result.phase1).toMatchObject({ trainExamples: 2, evalExamples: 2 });
    expect(result.phase1.steps).toBe(2);
    expect(result.phase2!.steps).toBe(1);

    const phase1Adapter = LoraWeights.fromTensors(
      gpu,
      model.config,
      result.phase1Adapter!.config,
      result.phase1Adapter!.tensors,
      'phase 1',
    );
    const data2 = prepareRunData(phase2Rows, phase2Eval, tok, phase2Settings);
    const fromPhase1 = await batchLoss(model, phase1Adapter, data2.train);
    const fromScratch = await batchLoss(model, null, data2.train); // PEFT init: B = 0, the base model
    expect(result.phase2!.trainLossFirst).toBeCloseTo(fromPhase1, 5);
    expect(Math.abs(fromPhase1 - fromScratch)).toBeGreaterThan(0.01);
    // Phase 2's own eval before training is the phase-1 adapter's too.
    const data2Eval = await batchLoss(model, phase1Adapter, data2.eval);
    expect(result.phase2!.evalLossBefore).toBeCloseTo(data2Eval, 5);

    // Forgetting: the phase-1 eval data under the phase-1 and the final adapter, through the evaluation module.
    const opts = { maxLength: MAX_LENGTH };
    const after1 = (await evaluate(model, tok, phase1Adapter, phase1Eval, opts)).after!.loss!;
    const after2 = (await evaluate(model, tok, result.adapter, phase1Eval, opts)).after!.loss!;
    expect(result.forgetting!.phase1EvalLossAfterPhase1).toBeCloseTo(after1, 5);
    expect(result.forgetting!.phase1EvalLossAfterPhase2).toBeCloseTo(after2, 5);
    expect(result.forgetting!.forgetting).toBeCloseTo(after2 - after1, 5);
    expect(result.phase1.evalLossAfter).toBeCloseTo(after1, 5);
    expect(after2).not.toBeCloseTo(after1, 4);
  });

  it('refuses a phase 2 with another rank and a phase 1 without eval data', async () => {
    const { gpu, model, tok } = await setup();
    const phase1 = { rows: phase1Rows, evalRows: phase1Eval, settings: validateTrainSettings({ lora: { r: 4 }, maxLength: MAX_LENGTH }) };
    const phase2 = { rows: phase2Rows, evalRows: null, settings: validateTrainSettings({ lora: { r: 8 }, maxLength: MAX_LENGTH }) };
    await expect(runProgressive(gpu, model, tok, { phase1, phase2 })).rejects.toThrow(ProgressiveError);
    const noEval = { ...phase1, evalRows: null, settings: { ...phase1.settings, evalFraction: 0 } };
    await expect(runProgressive(gpu, model, tok, { phase1: noEval, phase2: { ...phase2, settings: phase1.settings } })).rejects.toThrow(
      /no eval examples/,
    );
  });
});

describe('continuing from an adapter (--init-adapter)', () => {
  it('keeps the init adapter exactly when alpha changes (B rescaled) and refuses another rank or target set', async () => {
    const { gpu, model, tok } = await setup();
    const config = validateLoraConfig({ r: 3, alpha: 6, targets: ['q_proj', 'k_proj', 'down_proj'] });
    const init = new LoraAdapter(gpu, model.config, config);
    gpu.write(init.params, randomArray(init.layout.totalFloats, 9, -0.3, 0.3));
    const tensors = { config, tensors: await init.readTensors() };
    const examples = prepareRunData(phase2Rows, null, tok, { maxLength: MAX_LENGTH, packing: false, evalFraction: 0, seed: 0 }).train;
    const reference = await batchLoss(model, init, examples);
    expect(Math.abs(reference - (await batchLoss(model, null, examples)))).toBeGreaterThan(0.01);

    const same = startingAdapter(gpu, model.config, config, 0, tensors);
    expect(await batchLoss(model, same, examples)).toBe(reference);
    const louder = startingAdapter(gpu, model.config, { ...config, alpha: 24, useRslora: true }, 0, tensors);
    expect(await batchLoss(model, louder, examples)).toBeCloseTo(reference, 5);
    const name = [...tensors.tensors.keys()].find((n) => n.endsWith('lora_B.weight'))!;
    const ratio = 6 / 3 / (24 / Math.sqrt(3));
    expect((await louder.readTensors()).get(name)!.data[1]).toBeCloseTo(tensors.tensors.get(name)!.data[1] * ratio, 6);

    expect(() => startingAdapter(gpu, model.config, { ...config, r: 4 }, 0, tensors)).toThrow(InitAdapterError);
    expect(() => startingAdapter(gpu, model.config, { ...config, targets: ['q_proj', 'k_proj'] }, 0, tensors)).toThrow(
      /same target modules/,
    );
  });
});

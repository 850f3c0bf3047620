import { describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../src/lora/adapter';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel, type ModelWeightsSource } from '../../src/model/weights';
import { type RecomputeMode, validateTrainSettings } from '../../src/train/settings';
import { LoraTrainer } from '../../src/train/trainer';
import { testGpu } from '../helpers/gpu';
import { STORIES_260K } from '../helpers/paths';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';

/** Every step's loss, the eval loss and the trained adapter of a short run (dropout on, two micro-batches per step). */
async function train(source: ModelWeightsSource, recompute: RecomputeMode, memoryBudget: number | null = null) {
  const gpu = await testGpu();
  const { config } = source;
  const settings = validateTrainSettings({
    lora: { r: 3, alpha: 6, dropout: 0.1, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'] },
    lr: 2e-2,
    epochs: 1,
    batchSize: 2,
    gradAccum: 2,
    evalEvery: 0,
    checkpointEvery: 0,
    seed: 11,
    recompute,
    memoryBudget,
  });
  const rows = Array.from({ length: 7 }, (_, i) => {
    const inputIds = Array.from({ length: 9 + (i % 3) }, (_, t) => (i * 13 + t * 7 + 1) % config.vocabSize);
    return { inputIds, labels: [-100, ...inputIds.slice(1)], truncated: false };
  });
  const model = await LlamaModel.load(gpu, source);
  const adapter = new LoraAdapter(gpu, config, settings.lora);
  adapter.initPeft(3);
  const trainer = new LoraTrainer(gpu, model, adapter, settings, { train: rows, eval: rows.slice(0, 3) }, 0);
  try {
    const losses: number[] = [];
    const result = await trainer.run({ onProgress: (p) => losses.push(p.loss) });
    const tensors = await adapter.readTensors();
    return { recompute: trainer.recompute, losses, evalLoss: result.evalLoss, tensors: [...tensors].map(([n, t]) => [n, [...t.data]]) };
  } finally {
    trainer.destroy();
    adapter.destroy();
    model.destroy();
  }
}

describe('training with activation recomputation', () => {
  const tiny = tinyConfig({ numLayers: 3 });
  const sources: [string, () => Promise<ModelWeightsSource>][] = [
    ['the tiny model', async () => memoryWeightsSource(tiny, tinyWeights(tiny))],
    ['stories260K', async () => (await openModel(nodeFileSource(STORIES_260K))).weights],
  ];
  for (const [name, source] of sources) {
    it(`${name}: every step's loss and the trained adapter are those without it, bit for bit`, async () => {
      const off = await train(await source(), 'off');
      const on = await train(await source(), 'on');
      expect([off.recompute, on.recompute]).toEqual([false, true]);
      expect(off.losses).toHaveLength(2);
      expect(new Set(off.losses).size).toBe(2);
      expect(on.losses).toEqual(off.losses);
      expect(on.evalLoss).toBe(off.evalLoss);
      expect(on.tensors).toEqual(off.tensors);
    });
  }

  it('auto turns it on only when the run would exceed the memory budget', async () => {
    const source = memoryWeightsSource(tiny, tinyWeights(tiny));
    expect((await train(source, 'auto')).recompute).toBe(false);
    expect((await train(source, 'auto', 1024)).recompute).toBe(true);
    expect((await train(source, 'off', 1024)).recompute).toBe(false);
  });
});

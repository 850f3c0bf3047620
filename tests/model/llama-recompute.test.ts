import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context';
import { LoraAdapter } from '../../src/lora/adapter';
import { LORA_TARGETS, type LoraTarget, validateLoraConfig } from '../../src/lora/config';
import { peftTensorName } from '../../src/lora/layout';
import type { ModelConfig } from '../../src/model/config';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel, type ModelWeightsSource } from '../../src/model/weights';
import { type Batch, makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { STORIES_260K } from '../helpers/paths';
import { memoryWeightsSource, tinyConfig, tinyWeights, tinyMicroBatches } from '../helpers/tiny-model';

/** A random adapter with non-zero B, so every gradient path carries signal. */
function randomAdapter(gpu: Gpu, config: ModelConfig, targets: LoraTarget[], dropout: number): LoraAdapter {
  const adapter = new LoraAdapter(gpu, config, validateLoraConfig({ r: 3, alpha: 5, targets, dropout }));
  const init = new Map<string, { shape: number[]; data: Float32Array }>();
  let seed = 300;
  for (const module of adapter.layout.modules) {
    init.set(peftTensorName(module, 'A'), { shape: [3, module.inFeatures], data: randomArray(3 * module.inFeatures, seed++, -0.3, 0.3) });
    init.set(peftTensorName(module, 'B'), {
      shape: [module.outFeatures, 3],
      data: randomArray(3 * module.outFeatures, seed++, -0.1, 0.1),
    });
  }
  adapter.loadTensors(init, 'test');
  return adapter;
}

/** Loss and gradients of two micro-batches accumulated into one step, with recomputation on or off. */
async function step(model: LlamaModel, adapter: LoraAdapter, batches: Batch[], recompute: boolean) {
  adapter.zeroGrads();
  const targets = batches.reduce((sum, b) => sum + b.targetCount, 0);
  let loss = 0;
  for (const [i, batch] of batches.entries()) {
    model.lossAndGradients(batch, adapter, { lossScale: 1 / targets, dropoutSeed: 40 + i, recompute });
    loss += await model.readLossSum(batch);
  }
  const grads = await adapter.readGradients();
  return { loss, grads: new Map([...grads].map(([name, t]) => [name, Array.from(t.data)])), workspace: model.workspaceBytes };
}

async function expectSameStep(source: ModelWeightsSource, targets: LoraTarget[], dropout: number, batches: Batch[]) {
  const gpu = await testGpu();
  const model = await LlamaModel.load(gpu, source);
  const adapter = randomAdapter(gpu, source.config, targets, dropout);
  try {
    const off = await step(model, adapter, batches, false);
    model.releaseWorkspace();
    const on = await step(model, adapter, batches, true);
    expect(off.loss).toBeGreaterThan(0);
    expect(on.loss).toBe(off.loss);
    // The same kernels on the same values, so the same bits; dropout masks are seeded by step and module.
    expect(on.grads).toEqual(off.grads);
    expect([...off.grads.values()].flat().some((g) => g !== 0)).toBe(true);
    expect(on.workspace).toBeLessThan(off.workspace);
  } finally {
    adapter.destroy();
    model.destroy();
  }
}

describe('activation recomputation gives the gradients of the stored activations, bit for bit', () => {
  const config = tinyConfig({ numLayers: 3 });
  const source = memoryWeightsSource(config, tinyWeights(config));
  const batches = tinyMicroBatches();

  for (const { targets, dropout } of [
    { targets: [...LORA_TARGETS], dropout: 0 },
    { targets: [...LORA_TARGETS], dropout: 0.2 },
    { targets: ['q_proj', 'k_proj', 'v_proj'] as LoraTarget[], dropout: 0.1 },
    { targets: ['down_proj'] as LoraTarget[], dropout: 0 },
  ]) {
    it(`tiny model, ${targets.length === 7 ? 'all seven targets' : targets.join('/')}, dropout ${dropout}`, async () => {
      await expectSameStep(source, targets, dropout, batches);
    });
  }

  it('stories260K, q/k/v and o/down with dropout 0.1', async () => {
    const { weights } = await openModel(nodeFileSource(STORIES_260K));
    const T = 40;
    const rows = [0, 1, 2].map((b) => Array.from({ length: T }, (_, t) => (b * 131 + t * 37 + 1) % weights.config.vocabSize));
    await expectSameStep(weights, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'down_proj'], 0.1, [
      makeBatch(rows.slice(0, 2), rows.slice(0, 2)),
      makeBatch(rows.slice(2), rows.slice(2)),
    ]);
  });
});

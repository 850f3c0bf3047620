import { describe, expect, it } from 'vitest';
import { estimateTrainingMemory } from '../../src/app/memory';
import { LoraAdapter } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { LlamaModel } from '../../src/model/llama';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';

describe('training memory estimate', () => {
  it.each([
    { name: 'q/v without dropout', targets: ['q_proj', 'v_proj'], dropout: 0, B: 3, T: 7 },
    {
      name: 'all projections with dropout',
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      dropout: 0.1,
      B: 2,
      T: 13,
    },
  ])('equals the workspace a real training step allocates ($name)', async ({ targets, dropout, B, T }) => {
    const gpu = await testGpu();
    const config = tinyConfig();
    const lora = validateLoraConfig({ r: 3, targets, dropout });
    const model = await LlamaModel.load(gpu, memoryWeightsSource(config, tinyWeights(config)));
    const adapter = new LoraAdapter(gpu, config, lora);
    try {
      const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 7 + t * 3) % config.vocabSize));
      const batch = makeBatch(ids);
      model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount });
      await gpu.sync();
      const estimate = estimateTrainingMemory(config, { lora, batchSize: B, maxLength: T }, gpu.limits);
      expect(model.workspaceBytes).toBeGreaterThan(0);
      expect(estimate.activationBytes).toBe(model.workspaceBytes);
    } finally {
      adapter.destroy();
      model.destroy();
    }
  });

  it('refuses settings whose buffers exceed the binding limit, saying what to lower', () => {
    const config = tinyConfig({ vocabSize: 50_000, hiddenSize: 64, headDim: 16, numHeads: 4, numKvHeads: 2, intermediateSize: 4096 });
    const lora = validateLoraConfig({ r: 8 });
    const limits = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };
    const small = estimateTrainingMemory(config, { lora, batchSize: 1, maxLength: 64 }, limits);
    expect(small.fits).toBe(true);
    expect(small.totalBytes).toBe(small.weightsBytes + small.adapterBytes + small.optimizerBytes + small.activationBytes);
    // [M, intermediate] activations: 16 x 1024 x 4096 floats = 256 MiB in one buffer.
    const large = estimateTrainingMemory(
      config,
      { lora, batchSize: 16, maxLength: 1024 },
      { ...limits, maxStorageBufferBindingSize: 128 * 2 ** 20 },
    );
    expect(large.fits).toBe(false);
    expect(large.problems.join(' ')).toMatch(/Lower the batch size or the max length/);
    const tooLong = estimateTrainingMemory(config, { lora, batchSize: 1, maxLength: 128 }, limits);
    expect(tooLong.problems.join(' ')).toMatch(/longer than the 64 positions/);
  });
});

import { describe, expect, it } from 'vitest';
import { crossEntropyChunkRows } from '../../src/kernels/cross-entropy';
import { LoraAdapter } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { Workspace } from '../../src/model/workspace';
import { estimateTrainingMemory, trainingWorkspaceBuffers } from '../../src/app/memory';
import { testGpu } from '../helpers/gpu';
import { tinyConfig } from '../helpers/tiny-model';

describe('training memory estimate', () => {
  it.each([
    { name: 'q/v without dropout', targets: ['q_proj', 'v_proj'], dropout: 0, B: 3, T: 7 },
    { name: 'all projections with dropout', targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], dropout: 0.1, B: 2, T: 13 },
  ])('counts the bytes of a real training Workspace ($name)', async ({ targets, dropout, B, T }) => {
    const gpu = await testGpu();
    const config = tinyConfig();
    const lora = validateLoraConfig({ r: 3, targets, dropout });
    const M = B * T;
    const adapter = new LoraAdapter(gpu, config, lora);
    // The chunk LlamaModel picks for its cross-entropy scratch.
    const chunk = Math.min(crossEntropyChunkRows(M, 32 * 1024 * 1024), config.vocabSize);
    const workspace = new Workspace(gpu, config, M, true, adapter, chunk);
    try {
      expect(trainingWorkspaceBuffers(config, M, lora).reduce((a, b) => a + b, 0)).toBe(workspace.bytes);
    } finally {
      workspace.destroy();
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
    const large = estimateTrainingMemory(config, { lora, batchSize: 16, maxLength: 1024 }, { ...limits, maxStorageBufferBindingSize: 128 * 2 ** 20 });
    expect(large.fits).toBe(false);
    expect(large.problems.join(' ')).toMatch(/Lower the batch size or the max length/);
    const tooLong = estimateTrainingMemory(config, { lora, batchSize: 1, maxLength: 128 }, limits);
    expect(tooLong.problems.join(' ')).toMatch(/longer than the 64 positions/);
  });
});

import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { WebtuneEngine } from '../../src/app/engine';
import { createNodeDevice } from '../../src/gpu/node-device';
import { freshDbName } from '../storage/fixtures';
import { modelFiles } from './fixtures';

describe('WebtuneEngine (the facade)', () => {
  it('loads a local model folder and describes it', async () => {
    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    expect((await engine.init()).selfCheck?.ok).toBe(true);
    const model = await engine.loadLocalModel(modelFiles(), 'stories260K');
    expect(model).toMatchObject({ name: 'stories260K', architecture: 'llama', layers: 5, hidden: 64, vocab: 512, tokenizerOk: true });
    // Tied embeddings count once: 512 x 64 + 5 layers + final norm.
    expect(model.parameterCount).toBe(512 * 64 + 5 * (2 * 64 + 64 * 64 * 2 + 2 * 32 * 64 + 3 * 172 * 64) + 64);
    const estimate = await engine.estimateMemory({ batchSize: 4, maxLength: 256 });
    expect(estimate.fits).toBe(true);
    expect(estimate.weightsBytes).toBe(model.parameterCount * 4);
  });

  it('loads the weights in the precision asked for, says which, and estimates memory with it', async () => {
    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    await engine.init();
    const f32 = await engine.loadLocalModel(modelFiles(), 'stories260K');
    expect(f32.weightPrecision).toBe('f32');
    expect(f32.weightBytes).toBe(f32.parameterCount * 4);
    const bf16 = await engine.loadLocalModel(modelFiles(), 'stories260K', undefined, { weights: 'bf16' });
    expect(bf16.weightPrecision).toBe('bf16');
    // Norm weights (5 layers x 2 x 64 + 64 values) stay f32; every matrix is 2 bytes a value.
    const norms = 11 * 64;
    expect(bf16.weightBytes).toBe((bf16.parameterCount - norms) * 2 + norms * 4);
    const estimate = await engine.estimateMemory({ batchSize: 4, maxLength: 256 });
    expect(estimate.weightsBytes).toBe(bf16.weightBytes);
    expect((await engine.generate({ prompt: 'Once', adapterId: null, maxNewTokens: 2, temperature: 0 })).tokens).toBe(2);
    await expect(engine.loadLocalModel(modelFiles(), 'stories260K', undefined, { weights: 'fp8' as never })).rejects.toThrow(
      /"fp8" is not one of auto, f32, bf16, f16/,
    );
  });

  it('does one GPU task at a time and says which one is running', async () => {
    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    await engine.init();
    const loading = engine.loadLocalModel(modelFiles(), 'stories260K');
    await expect(engine.generate({ prompt: 'Once', adapterId: null, maxNewTokens: 2, temperature: 0 })).rejects.toThrow(
      /busy loading a model/,
    );
    await loading;
    expect((await engine.generate({ prompt: 'Once', adapterId: null, maxNewTokens: 2, temperature: 0 })).tokens).toBe(2);
  });
});

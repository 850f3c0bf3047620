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

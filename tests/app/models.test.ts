import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AdapterLibrary } from '../../src/app/adapters';
import { DatasetService } from '../../src/app/datasets';
import { DeviceSession } from '../../src/app/device';
import { InferenceService } from '../../src/app/inference';
import { ModelSession } from '../../src/app/models';
import { RunService } from '../../src/app/runs';
import { TaskGuard } from '../../src/app/tasks';
import { createNodeDevice } from '../../src/gpu/node-device';
import { openWebtuneDb } from '../../src/storage/db';
import { expectRefusal } from '../export/helpers';
import { SHARED } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';
import { modelFiles } from './fixtures';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { collectParts } from '../gguf/helpers';
import { STORIES_260K } from '../helpers/paths';

function services() {
  const db = openWebtuneDb(freshDbName());
  const storage = () => db;
  const device = new DeviceSession(createNodeDevice);
  const models = new ModelSession(device, storage);
  const adapters = new AdapterLibrary(storage, device, models);
  const tasks = new TaskGuard();
  const runs = new RunService({ storage, device, models, adapters, tasks, historyFlushMs: 0 });
  return {
    device,
    models,
    adapters,
    runs,
    datasets: new DatasetService(storage),
    inference: new InferenceService(storage, models, adapters),
  };
}

describe('model session', () => {
  it('refuses work before a model is loaded, saying what to do', async () => {
    const { models } = services();
    await expectRefusal(() => models.current(), Error, 'No model is loaded yet');
  });

  it('loads a GGUF blob picked as a file and describes it: format, quantization mix, file size, tokenizer source', async () => {
    const { models } = services();
    const stories = await openModel(nodeFileSource(STORIES_260K));
    const bytes = await collectParts(
      ggufModelParts({ config: stories.config, weights: stories.weights, tokenizer: stories, type: 'Q8_0' }),
    );
    const info = await models.loadLocal([{ path: 'sha256-0123', file: new Blob([bytes]) }], 'stories:260k');
    expect(info).toMatchObject({
      name: 'stories:260k',
      format: 'gguf',
      fileBytes: bytes.length,
      tokenizerSource: 'gguf',
      tokenizerProblems: [],
    });
    expect(info.quantization!.map((q) => [q.type, q.tensors])).toEqual([
      ['Q8_0', 31],
      ['F16', 5],
      ['F32', 11],
    ]);
    // The blocks and the F16 matrices go to the GPU as the file stores them (every tensor here is whole u32 words).
    expect(info.weightPrecision).toBe('mixed');
    expect(info.weightBytes).toBe(info.quantization!.reduce((sum, q) => sum + q.bytes, 0));
    expect(info.weightBytes).toBeLessThan((info.parameterCount * 4) / 3);
    expect(models.current().source).toBeNull();
    models.release();
  });

  it('frees everything a model used when it is released: GPU buffers and bind groups return to their baseline', async () => {
    const { device, models, runs, datasets, inference } = services();
    const gpu = await device.gpu();
    const zog = readFileSync(join(SHARED, 'data/zog_stories_train.jsonl'), 'utf8').split('\n').slice(0, 4).join('\n');
    const datasetId = (await datasets.commit((await datasets.preview('zog', new Blob([zog]), 'zog.jsonl')).previewId)).id;
    const settings = {
      lora: { r: 2, alpha: 4, targets: ['q_proj' as const, 'down_proj' as const] },
      epochs: 1,
      batchSize: 4,
      maxLength: 24,
      evalFraction: 0,
    };
    const after: { liveBytes: number; liveBuffers: number; bindGroups: number }[] = [];
    for (let cycle = 0; cycle < 3; cycle++) {
      await models.loadLocal(modelFiles(), 'stories260K');
      const weights = (await models.llama()).weights.bytes;
      expect(gpu.bufferAccounting.liveBytes).toBeGreaterThanOrEqual(weights);
      // Everything that allocates for a model: training (workspace, adapter, AdamW), a stored adapter on the GPU, a KV cache.
      const outcome = await runs.start({ datasetId, evalDatasetId: null, settings });
      expect(outcome.status).toBe('completed');
      await inference.generate({ prompt: 'Once upon a time', adapterId: outcome.adapterId, maxNewTokens: 3, temperature: 0 });
      await inference.evaluate({ datasetId, adapterId: outcome.adapterId, maxNewTokens: 2, temperature: 0 });
      const busy = gpu.bufferAccounting.liveBytes;
      models.release();
      await gpu.sync();
      const { liveBytes, liveBuffers } = gpu.bufferAccounting;
      expect(busy - liveBytes).toBeGreaterThanOrEqual(weights);
      after.push({ liveBytes, liveBuffers, bindGroups: gpu.bindGroupStats.cached });
    }
    // What stays are the Gpu's own pools (uniform blocks, small readback buffers), the same after every cycle.
    expect(after[1]).toEqual(after[0]);
    expect(after[2]).toEqual(after[0]);
    expect(after[0].liveBuffers).toBeLessThan(20);
  });
});

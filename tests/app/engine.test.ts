import 'fake-indexeddb/auto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../../src/export/peft';
import { unzipToFileSource } from '../../src/export/zip';
import { createNodeDevice } from '../../src/gpu/node-device';
import type { RunEvent } from '../../src/app/api';
import { EngineStateError, WebtuneEngine } from '../../src/app/engine';
import { SHARED, STORIES_260K } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';

const DATA = join(SHARED, 'data');

/** The model folder as a folder picker hands it over. */
function modelFiles() {
  return readdirSync(STORIES_260K).map((name) => ({
    path: `stories260K/${name}`,
    file: new File([readFileSync(join(STORIES_260K, name))], name),
  }));
}

/** The first eight Zog stories: two steps of four per epoch keep these runs short on SwiftShader. */
function zogBlob(): Blob {
  const lines = readFileSync(join(DATA, 'zog_stories_train.jsonl'), 'utf8').split('\n').slice(0, 8);
  return new Blob([`${lines.join('\n')}\n`]);
}

const SHORT_RUN = {
  lora: { r: 4, alpha: 8, targets: ['q_proj', 'v_proj'] as ('q_proj' | 'v_proj')[] },
  lr: 5e-3,
  epochs: 1,
  batchSize: 4,
  maxLength: 24,
  evalFraction: 0,
  checkpointEvery: 1,
};

/** An engine on Dawn with a fresh database; `devices` lists every device it was given, newest last. */
async function engineWithModel() {
  const devices: GPUDevice[] = [];
  const engine = new WebtuneEngine({
    requestDevice: async () => {
      const device = await createNodeDevice();
      devices.push(device);
      return device;
    },
    dbName: freshDbName(),
    historyFlushMs: 0,
  });
  const info = await engine.init();
  expect(info.state).toBe('ready');
  await engine.loadLocalModel(modelFiles(), 'stories260K');
  const preview = await engine.importDataset('zog', zogBlob(), 'zog.jsonl');
  const dataset = await engine.commitDataset(preview.previewId);
  return { engine, devices, datasetId: dataset.id };
}

describe('WebtuneEngine', () => {
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

  it('previews an import without storing it, and stores only what is committed', async () => {
    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    const bytes = readFileSync(join(DATA, 'bad/mixed_errors.jsonl'));
    const preview = await engine.importDataset('mixed', new Blob([bytes]), 'mixed_errors.jsonl');
    expect(preview.validRows).toBe(2);
    expect(preview.errors.map((e) => e.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(await engine.listDatasets()).toEqual([]);
    await engine.discardDataset(preview.previewId);
    await expect(engine.commitDataset(preview.previewId)).rejects.toThrow(EngineStateError);
    expect(await engine.listDatasets()).toEqual([]);

    const garbage = await engine.importDataset('garbage', new Blob([readFileSync(join(DATA, 'bad/binary_garbage.jsonl'))]), 'binary_garbage.jsonl');
    expect(garbage.validRows).toBe(0);
    await expect(engine.commitDataset(garbage.previewId)).rejects.toThrow(/no valid rows/);

    const again = await engine.importDataset('mixed', new Blob([bytes]), 'mixed_errors.jsonl');
    const stored = await engine.commitDataset(again.previewId, 'chats');
    expect(stored).toMatchObject({ name: 'chats', rowCount: 2, invalidLineCount: 6, sourceFileName: 'mixed_errors.jsonl' });
    expect((await engine.listDatasets()).map((d) => d.id)).toEqual([stored.id]);
  });

  it('pauses at a checkpoint, resumes from that step, and saves an adapter PEFT can read', async () => {
    const { engine, datasetId } = await engineWithModel();
    const events: RunEvent[] = [];
    const paused = await engine.startRun({ datasetId, evalDatasetId: null, settings: SHORT_RUN }, (event) => {
      events.push(event);
      if (event.type === 'progress') void engine.pause();
    });
    expect(paused).toMatchObject({ status: 'paused', step: 1, totalSteps: 2, adapterId: null });
    const [run] = await engine.listRuns();
    expect(run).toMatchObject({ status: 'paused', lastCheckpointStep: 1, step: 1 });
    expect(run.history.map((p) => p.step)).toEqual([1]);

    const resumedEvents: RunEvent[] = [];
    const done = await engine.resumeRun(run.id, (event) => resumedEvents.push(event));
    expect(done).toMatchObject({ status: 'completed', step: 2 });
    const progress = resumedEvents.flatMap((e) => (e.type === 'progress' ? [e.progress.step] : []));
    expect(progress).toEqual([2]);
    const finished = (await engine.listRuns())[0];
    expect(finished).toMatchObject({ status: 'completed', step: 2 });
    expect(finished.history.map((p) => p.step)).toEqual([1, 2]);

    const [adapter] = await engine.listAdapters();
    expect(adapter).toMatchObject({ id: done.adapterId, baseModel: 'stories260K', datasetName: 'zog' });
    const zip = await engine.exportAdapterZip(adapter.id);
    const files = unzipToFileSource(zip, 'adapter.zip');
    const model = JSON.parse(readFileSync(join(STORIES_260K, 'config.json'), 'utf8'));
    const { parseModelConfig } = await import('../../src/model/config');
    const peft = await readPeftAdapter(files, parseModelConfig(model));
    expect(peft.config).toMatchObject({ r: 4, alpha: 8, targets: ['q_proj', 'v_proj'] });

    const generated = await engine.generate({ prompt: 'Once upon a time', adapterId: adapter.id, maxNewTokens: 4, temperature: 0 });
    expect(generated.tokens).toBeGreaterThan(0);
    await engine.renameAdapter(adapter.id, 'zog v1');
    expect((await engine.listAdapters())[0].name).toBe('zog v1');
    await engine.deleteAdapter(adapter.id);
    expect(await engine.listAdapters()).toEqual([]);
  });

  it('pauses a run when the GPU device is lost and resumes it on a new device', async () => {
    const { engine, devices, datasetId } = await engineWithModel();
    const outcome = await engine.startRun({ datasetId, evalDatasetId: null, settings: SHORT_RUN }, (event) => {
      if (event.type === 'checkpoint') devices.at(-1)!.destroy();
    });
    expect(outcome.status).toBe('paused');
    expect(outcome.error).toMatch(/lost|destroyed/i);
    const [run] = await engine.listRuns();
    expect(run).toMatchObject({ status: 'paused', lastCheckpointStep: 1 });
    expect(run.error).toBe(outcome.error);

    const done = await engine.resumeRun(run.id);
    expect(done).toMatchObject({ status: 'completed', step: 2 });
    expect(devices.length).toBe(2);
  });
});

import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../../src/export/peft';
import { unzipToFileSource } from '../../src/export/zip';
import { createNodeDevice } from '../../src/gpu/node-device';
import type { RunEvent } from '../../src/app/api';
import { WebtuneEngine } from '../../src/app/engine';
import { SHARED, STORIES_260K } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';
import { modelFiles } from './fixtures';

const DATA = join(SHARED, 'data');

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

describe('runs', () => {
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

  it('resumes exactly: the losses after a pause equal those of an uninterrupted run', async () => {
    const settings = { ...SHORT_RUN, batchSize: 1, maxLength: 64 };
    const straight = await engineWithModel();
    await straight.engine.startRun({ datasetId: straight.datasetId, evalDatasetId: null, settings });
    const paused = await engineWithModel();
    const first = await paused.engine.startRun({ datasetId: paused.datasetId, evalDatasetId: null, settings }, (event) => {
      if (event.type === 'progress' && event.progress.step === 2) void paused.engine.pause();
    });
    expect(first).toMatchObject({ status: 'paused', step: 2 });
    const done = await paused.engine.resumeRun(first.runId);
    expect(done).toMatchObject({ status: 'completed', step: 8 });
    const losses = async (engine: WebtuneEngine) =>
      (await engine.listRuns())[0].history.flatMap((p) => (p.loss === undefined ? [] : [p.loss]));
    const expected = await losses(straight.engine);
    expect(expected).toHaveLength(8);
    // The AdamW moments come back too: a resume that dropped them would change every step after the pause.
    expect(await losses(paused.engine)).toEqual(expected);
  });
});

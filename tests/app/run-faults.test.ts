import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDB } from 'idb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunEvent } from '../../src/app/api';
import { WebtuneEngine } from '../../src/app/engine';
import { createNodeDevice } from '../../src/gpu/node-device';
import { DamagedRecordError } from '../../src/storage/errors';
import { SHARED } from '../helpers/paths';
import { failNextPut, freshDbName } from '../storage/fixtures';
import { modelFiles } from './fixtures';

/** Two steps of four Zog stories per epoch, a checkpoint after every step. */
const SHORT_RUN = {
  lora: { r: 4, alpha: 8, targets: ['q_proj', 'v_proj'] as ('q_proj' | 'v_proj')[] },
  lr: 5e-3,
  epochs: 1,
  batchSize: 4,
  maxLength: 24,
  evalFraction: 0,
  checkpointEvery: 1,
};

afterEach(() => {
  vi.restoreAllMocks();
});

async function engineWithData() {
  const dbName = freshDbName();
  const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName, historyFlushMs: 0 });
  expect((await engine.init()).state).toBe('ready');
  await engine.loadLocalModel(modelFiles(), 'stories260K');
  const lines = readFileSync(join(SHARED, 'data/zog_stories_train.jsonl'), 'utf8').split('\n').slice(0, 8);
  const preview = await engine.importDataset('zog', new Blob([`${lines.join('\n')}\n`]), 'zog.jsonl');
  const dataset = await engine.commitDataset(preview.previewId);
  return { engine, dbName, datasetId: dataset.id };
}

/** Flips one byte of a stored record, as damage on disk would. */
async function flipStoredByte(dbName: string, store: string, key: IDBValidKey, pick: (value: never) => Float32Array): Promise<void> {
  const raw = await openDB(dbName);
  try {
    const value = await raw.get(store, key);
    const array = pick(value as never);
    new Uint8Array(array.buffer, array.byteOffset, array.byteLength)[2] ^= 0x10;
    await raw.put(store, value);
  } finally {
    raw.close();
  }
}

describe('runs under storage faults', () => {
  it('pause when a checkpoint does not fit, saying so and how much it needs, and resume from the one before', async () => {
    const { engine, datasetId } = await engineWithData();
    const outcome = await engine.startRun({ datasetId, evalDatasetId: null, settings: SHORT_RUN }, (event) => {
      // The first checkpoint is written; the disk is full for the second.
      if (event.type === 'checkpoint' && event.step === 1) failNextPut('checkpoints');
    });
    expect(outcome).toMatchObject({ status: 'paused', pauseReason: 'storage-full', step: 1, adapterId: null });
    // 4,480 LoRA parameters (r 4 on q and v of five layers) with their two AdamW moments, in f32.
    expect(outcome.error).toMatch(/^Browser storage is full, so the checkpoint at step 2 of run ".*zog" was not saved\./);
    expect(outcome.error).toContain('It needs about 53.8 KB. Everything saved before is intact.');
    const [run] = await engine.listRuns();
    expect(run).toMatchObject({ status: 'paused', lastCheckpointStep: 1, error: outcome.error });
    expect((await engine.listDatasets()).map((d) => d.rowCount)).toEqual([8]);

    const resumed: RunEvent[] = [];
    const done = await engine.resumeRun(run.id, (event) => resumed.push(event));
    expect(done).toMatchObject({ status: 'completed', step: 2 });
    expect(resumed.flatMap((e) => (e.type === 'progress' ? [e.progress.step] : []))).toEqual([2]);
  });

  it('resume from the newest intact checkpoint when the latest is damaged, and refuse when none is intact', async () => {
    const { engine, dbName, datasetId } = await engineWithData();
    const settings = { ...SHORT_RUN, epochs: 2 };
    const paused = await engine.startRun({ datasetId, evalDatasetId: null, settings }, (event) => {
      if (event.type === 'checkpoint' && event.step === 3) void engine.pause();
    });
    expect(paused).toMatchObject({ status: 'paused', step: 3 });
    await flipStoredByte(dbName, 'checkpoints', [paused.runId, 3], (c: { m: Float32Array }) => c.m);

    const events: RunEvent[] = [];
    const done = await engine.resumeRun(paused.runId, (event) => events.push(event));
    expect(events.filter((e) => e.type === 'warning')).toEqual([
      {
        type: 'warning',
        runId: paused.runId,
        message: expect.stringMatching(
          new RegExp(
            '^The checkpoint at step 3 of run ".*" is damaged: the stored AdamW first moments no longer match their checksum, ' +
              'so it is not used: resuming from the checkpoint at step 2\\.$',
          ),
        ),
      },
    ]);
    expect(events.flatMap((e) => (e.type === 'progress' ? [e.progress.step] : []))).toEqual([3, 4]);
    expect(done).toMatchObject({ status: 'completed', step: 4 });

    const second = await engine.startRun({ datasetId, evalDatasetId: null, settings: SHORT_RUN }, (event) => {
      if (event.type === 'checkpoint') void engine.pause();
    });
    expect(second).toMatchObject({ status: 'paused', step: 1 });
    await flipStoredByte(dbName, 'checkpoints', [second.runId, 1], (c: { params: Float32Array }) => c.params);
    const refused = await engine.resumeRun(second.runId).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(DamagedRecordError);
    expect((refused as Error).message).toMatch(
      /^The checkpoint at step 1 of run ".*" is damaged: the stored adapter weights no longer match/,
    );
    expect((refused as Error).message).toMatch(/so webtune will not use it\. No intact checkpoint of the run is left; start it again\.$/);
    expect((await engine.listRuns()).find((r) => r.id === second.runId)).toMatchObject({ status: 'paused', step: 1 });
  });

  it('never use a damaged adapter or dataset: inference, export, continued training and runs are refused, naming it', async () => {
    const { engine, dbName, datasetId } = await engineWithData();
    const done = await engine.startRun({ datasetId, evalDatasetId: null, settings: { ...SHORT_RUN, checkpointEvery: 0 } });
    const adapterId = done.adapterId!;
    await flipStoredByte(dbName, 'adapters', adapterId, (a: { tensors: { data: Float32Array }[] }) => a.tensors[3].data);
    const damaged =
      /^The adapter ".*" is damaged: the stored values of tensor .* no longer match their checksum, so webtune will not use it\./;
    await expect(engine.generate({ prompt: 'Zog', adapterId, maxNewTokens: 2, temperature: 0 })).rejects.toThrow(damaged);
    await expect(engine.exportAdapterZip(adapterId)).rejects.toThrow(damaged);
    await expect(engine.exportAdapter({ adapterId, format: 'peft' })).rejects.toThrow(damaged);
    await expect(engine.startRun({ datasetId, evalDatasetId: null, settings: SHORT_RUN, initAdapterId: adapterId })).rejects.toThrow(
      damaged,
    );
    expect((await engine.listAdapters()).map((a) => a.id)).toEqual([adapterId]);

    const raw = await openDB(dbName);
    const chunk = await raw.get('datasetChunks', [datasetId, 0]);
    await raw.put('datasetChunks', { ...chunk, json: chunk.json.replace('Zog', 'Zig') });
    raw.close();
    const runsBefore = (await engine.listRuns()).length;
    await expect(engine.startRun({ datasetId, evalDatasetId: null, settings: SHORT_RUN })).rejects.toThrow(
      'The dataset "zog" is damaged: the stored rows of chunk 1 of 1 no longer match their checksum, so webtune will not use it. ' +
        'Delete the dataset and import it again.',
    );
    expect(await engine.listRuns()).toHaveLength(runsBefore);
  });
});

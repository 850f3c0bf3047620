import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { afterEach, describe, expect, it } from 'vitest';
import { DB_VERSION, newId } from '../../src/storage/db';
import { NotFoundError } from '../../src/storage/errors';
import { adapter, checkpoint, closeTestDbs, dataset, freshDbName, modelFile, openTestDb, run } from './fixtures';

afterEach(() => {
  closeTestDbs();
});

/** Reads the stored checkpoint keys directly, bypassing WebtuneDb. */
async function storedCheckpointKeys(name: string): Promise<IDBValidKey[]> {
  const raw = await openDB(name);
  try {
    return await raw.getAllKeys('checkpoints');
  } finally {
    raw.close();
  }
}

describe('newId', () => {
  it('prefixes a random UUID', () => {
    const a = newId('run');
    expect(a).toMatch(/^run-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(newId('run')).not.toBe(a);
  });
});

describe('schema', () => {
  it('creates every store and index when the database is new', async () => {
    const name = freshDbName();
    (await openTestDb(name)).close();

    const raw = await openDB(name);
    try {
      expect(raw.version).toBe(DB_VERSION);
      expect([...raw.objectStoreNames].sort()).toEqual([
        'adapters',
        'checkpoints',
        'conversations',
        'datasetChunks',
        'datasets',
        'documentIndex',
        'documents',
        'modelFiles',
        'pendingImports',
        'runs',
      ]);
      const tx = raw.transaction([...raw.objectStoreNames]);
      expect(tx.objectStore('datasets').keyPath).toBe('id');
      expect([...tx.objectStore('datasets').indexNames]).toEqual(['createdAt']);
      expect(tx.objectStore('runs').keyPath).toBe('id');
      expect([...tx.objectStore('runs').indexNames]).toEqual(['createdAt']);
      expect(tx.objectStore('checkpoints').keyPath).toEqual(['runId', 'step']);
      expect(tx.objectStore('adapters').keyPath).toBe('id');
      expect([...tx.objectStore('adapters').indexNames].sort()).toEqual(['createdAt', 'runId']);
      expect(tx.objectStore('modelFiles').keyPath).toEqual(['modelId', 'path']);
      expect(tx.objectStore('conversations').keyPath).toBe('id');
      expect([...tx.objectStore('conversations').indexNames]).toEqual(['updatedAt']);
      expect(tx.objectStore('documents').keyPath).toBe('name');
      expect([...tx.objectStore('documents').indexNames]).toEqual(['addedAt']);
      expect(tx.objectStore('documentIndex').keyPath).toBeNull();
      expect(tx.objectStore('datasetChunks').keyPath).toEqual(['datasetId', 'index']);
      expect(tx.objectStore('pendingImports').keyPath).toBe('id');
      await tx.done;
    } finally {
      raw.close();
    }
  });

  it('keeps everything across close and reopen, as a page reload does', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.saveDataset(dataset());
    await db.createRun(run());
    await db.saveCheckpoint(checkpoint('run-1', 10));
    await db.saveAdapter(adapter());
    await db.modelFiles.put(modelFile('org/model', 'config.json', '{"model_type":"llama"}'));
    db.close();

    const reopened = await openTestDb(name);
    expect(await reopened.getDataset('ds-1')).toEqual(dataset());
    expect(await reopened.getRun('run-1')).toMatchObject({ name: 'first run', lastCheckpointStep: 10 });
    expect(await reopened.latestCheckpoint('run-1')).toEqual(checkpoint('run-1', 10));
    expect(await reopened.getAdapter('ad-1')).toEqual(adapter());
    const file = await reopened.modelFiles.get('org/model', 'config.json');
    expect(await file?.blob.text()).toBe('{"model_type":"llama"}');
  });
});

describe('datasets', () => {
  it('round-trips, lists summaries without rows newest first, renames and deletes', async () => {
    const db = await openTestDb(freshDbName());
    await db.saveDataset(dataset());
    await db.saveDataset(dataset({ id: 'ds-2', name: 'later', createdAt: 5_000 }));

    expect(await db.getDataset('ds-1')).toEqual(dataset());
    const summaries = await db.listDatasets();
    expect(summaries.map((d) => d.id)).toEqual(['ds-2', 'ds-1']);
    expect(summaries.every((d) => !('rows' in d))).toBe(true);
    expect(summaries[1]).toEqual({
      id: 'ds-1',
      name: 'support chats',
      createdAt: 1_000,
      format: 'messages',
      rowCount: 3,
      invalidLineCount: 1,
      sourceFileName: 'chats.jsonl',
    });

    await db.renameDataset('ds-1', 'renamed');
    expect(await db.getDataset('ds-1')).toEqual(dataset({ name: 'renamed' }));

    await db.deleteDataset('ds-1');
    await expect(db.getDataset('ds-1')).rejects.toThrow(NotFoundError);
    expect((await db.listDatasets()).map((d) => d.id)).toEqual(['ds-2']);
  });

  it('reports a missing dataset by kind and id', async () => {
    const db = await openTestDb(freshDbName());
    const error = await db.getDataset('nope').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ kind: 'dataset', id: 'nope' });
    await expect(db.renameDataset('nope', 'x')).rejects.toThrow(/No dataset "nope"/);
  });
});

describe('runs', () => {
  it('round-trips, updates, appends history and lists newest first', async () => {
    const db = await openTestDb(freshDbName());
    await db.createRun(run());
    await db.createRun(run({ id: 'run-2', createdAt: 9_000 }));
    expect(await db.getRun('run-1')).toEqual(run());
    await expect(db.createRun(run())).rejects.toThrow();

    const updated = await db.updateRun('run-1', { status: 'running', step: 3 });
    expect(updated).toMatchObject({ status: 'running', step: 3, createdAt: 2_000 });
    expect(updated.updatedAt).toBeGreaterThan(2_000);

    await db.appendHistory('run-1', [
      { step: 1, epoch: 0, loss: 2.5, lr: 1e-4, tokensPerSecond: 900, elapsedMs: 100 },
      { step: 2, epoch: 0, loss: 2.25, lr: 2e-4, elapsedMs: 200 },
    ]);
    await db.appendHistory('run-1', [{ step: 2, epoch: 0, evalLoss: 2.4, lr: 2e-4, elapsedMs: 250 }]);
    const stored = await db.getRun('run-1');
    expect(stored.history.map((p) => [p.step, p.loss, p.evalLoss])).toEqual([
      [1, 2.5, undefined],
      [2, 2.25, undefined],
      [2, undefined, 2.4],
    ]);
    expect(stored).toMatchObject({ status: 'running', step: 3 });

    expect((await db.listRuns()).map((r) => r.id)).toEqual(['run-2', 'run-1']);
    await expect(db.updateRun('missing', { step: 1 })).rejects.toThrow(NotFoundError);
    await expect(db.appendHistory('missing', [])).rejects.toThrow(NotFoundError);
  });

  it('deletes a run with its checkpoints and detaches its adapters', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());
    await db.createRun(run({ id: 'run-2' }));
    await db.saveCheckpoint(checkpoint('run-1', 10));
    await db.saveCheckpoint(checkpoint('run-1', 20));
    await db.saveCheckpoint(checkpoint('run-2', 5));
    await db.saveAdapter(adapter());

    await db.deleteRun('run-1');

    await expect(db.getRun('run-1')).rejects.toThrow(NotFoundError);
    expect(await db.latestCheckpoint('run-1')).toBeNull();
    expect(await storedCheckpointKeys(name)).toEqual([['run-2', 5]]);
    expect(await db.getAdapter('ad-1')).toEqual(adapter({ runId: null }));
    expect((await db.listRuns()).map((r) => r.id)).toEqual(['run-2']);
  });
});

describe('checkpoints', () => {
  it('keeps only the newest two per run and records the newest step on the run', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());
    await db.createRun(run({ id: 'run-2' }));
    await db.saveCheckpoint(checkpoint('run-2', 1));
    for (const step of [10, 20, 30]) await db.saveCheckpoint(checkpoint('run-1', step));

    expect(await storedCheckpointKeys(name)).toEqual([
      ['run-1', 20],
      ['run-1', 30],
      ['run-2', 1],
    ]);
    expect((await db.getRun('run-1')).lastCheckpointStep).toBe(30);
    expect((await db.getRun('run-2')).lastCheckpointStep).toBe(1);

    const latest = await db.latestCheckpoint('run-1');
    expect(latest).toEqual(checkpoint('run-1', 30));
    expect(latest?.params).toBeInstanceOf(Float32Array);
    expect(Array.from(latest!.m)).toEqual(Array.from(checkpoint('run-1', 30).m));
  });

  it('honours a custom retention count and orders steps numerically', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());
    for (const step of [9, 100, 20]) await db.saveCheckpoint(checkpoint('run-1', step), 1);
    expect(await storedCheckpointKeys(name)).toEqual([['run-1', 100]]);
    await expect(db.saveCheckpoint(checkpoint('run-1', 200), 0)).rejects.toThrow(RangeError);
  });

  it('refuses a checkpoint for a missing run and writes nothing', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await expect(db.saveCheckpoint(checkpoint('ghost', 1))).rejects.toThrow(NotFoundError);
    expect(await storedCheckpointKeys(name)).toEqual([]);
  });

  it('returns null when a run has no checkpoint', async () => {
    const db = await openTestDb(freshDbName());
    expect(await db.latestCheckpoint('run-1')).toBeNull();
  });
});

describe('adapters', () => {
  it('round-trips tensors, lists summaries without tensors, renames and deletes', async () => {
    const db = await openTestDb(freshDbName());
    await db.saveAdapter(adapter());
    await db.saveAdapter(adapter({ id: 'ad-2', createdAt: 8_000, runId: null }));

    const stored = await db.getAdapter('ad-1');
    expect(stored).toEqual(adapter());
    expect(stored.tensors[1].data).toBeInstanceOf(Float32Array);
    expect(Array.from(stored.tensors[1].data)).toEqual(Array.from(adapter().tensors[1].data));

    const summaries = await db.listAdapters();
    expect(summaries.map((a) => a.id)).toEqual(['ad-2', 'ad-1']);
    expect(summaries.every((a) => !('tensors' in a))).toBe(true);
    expect(summaries[1]).toMatchObject({ name: 'support adapter', finalTrainLoss: 1.25, config: adapter().config });

    await db.renameAdapter('ad-1', 'v2');
    expect((await db.getAdapter('ad-1')).name).toBe('v2');
    await expect(db.renameAdapter('missing', 'x')).rejects.toThrow(NotFoundError);

    await db.deleteAdapter('ad-1');
    await expect(db.getAdapter('ad-1')).rejects.toThrow(NotFoundError);
    expect((await db.listAdapters()).map((a) => a.id)).toEqual(['ad-2']);
  });
});

describe('model files', () => {
  it('caches files per model and deletes one model without touching another', async () => {
    const db = await openTestDb(freshDbName());
    // A model id that extends another one must not fall into its key range.
    await db.modelFiles.put(modelFile('org/m', 'config.json', '{}'));
    await db.modelFiles.put(modelFile('org/m', 'model.safetensors', 'weights'));
    await db.modelFiles.put(modelFile('org/m-instruct', 'config.json', '{"a":1}'));

    const files = await db.modelFiles.list('org/m');
    expect(files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors']);
    expect(await files[1].blob.text()).toBe('weights');
    expect(files[1]).toMatchObject({ modelId: 'org/m', revision: 'main', size: 7 });
    expect(await db.modelFiles.get('org/m', 'tokenizer.json')).toBeNull();
    expect(await db.modelFiles.listModels()).toEqual([
      { modelId: 'org/m', revision: 'main', fileCount: 2, size: 9 },
      { modelId: 'org/m-instruct', revision: 'main', fileCount: 1, size: 7 },
    ]);

    await db.modelFiles.deleteModel('org/m');
    expect(await db.modelFiles.list('org/m')).toEqual([]);
    expect((await db.modelFiles.list('org/m-instruct')).map((f) => f.path)).toEqual(['config.json']);
  });
});

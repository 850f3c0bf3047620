import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DB_VERSION, openWebtuneDb } from '../../src/storage/db';
import { StorageFullError, StorageUnavailableError } from '../../src/storage/errors';
import { adapter, checkpoint, closeTestDbs, dataset, failNextPut, freshDbName, openTestDb, run } from './fixtures';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  closeTestDbs();
});

async function storedCheckpointKeys(name: string): Promise<IDBValidKey[]> {
  const raw = await openDB(name);
  try {
    return await raw.getAllKeys('checkpoints');
  } finally {
    raw.close();
  }
}

describe('storage full', () => {
  it('keeps the previous dataset when saving over it fails', async () => {
    const db = await openTestDb(freshDbName());
    await db.saveDataset(dataset());

    failNextPut('datasets');
    const error = await db.saveDataset(dataset({ name: 'bigger', rows: [], rowCount: 0 })).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(StorageFullError);
    expect((error as StorageFullError).message).toMatch(/storage is full, so the dataset "bigger" was not saved/);
    expect((error as StorageFullError).message).toMatch(/intact/);
    expect((error as StorageFullError).message).toMatch(
      /Delete old runs, adapters or downloads in webtune \(the model step lists.*free disk space/,
    );
    expect((error as StorageFullError).cause).toMatchObject({ name: 'QuotaExceededError' });
    expect(await db.getDataset('ds-1')).toEqual(dataset());
    expect(await db.listDatasets()).toHaveLength(1);
    // The connection stays usable once space is freed.
    await db.saveDataset(dataset({ id: 'ds-2' }));
    expect(await db.listDatasets()).toHaveLength(2);
  });

  it('leaves checkpoints and run untouched when the new checkpoint cannot be written', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());
    await db.saveCheckpoint(checkpoint('run-1', 10));
    await db.saveCheckpoint(checkpoint('run-1', 20));
    const runBefore = await db.getRun('run-1');

    failNextPut('checkpoints');
    await expect(db.saveCheckpoint(checkpoint('run-1', 30))).rejects.toThrow(/the checkpoint at step 30 of run "first run" was not saved/);

    expect(await storedCheckpointKeys(name)).toEqual([
      ['run-1', 10],
      ['run-1', 20],
    ]);
    expect(await db.latestCheckpoint('run-1')).toEqual(checkpoint('run-1', 20));
    expect(await db.getRun('run-1')).toEqual(runBefore);
  });

  it('rolls back the new checkpoint and the pruning when the run update fails last', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());
    await db.saveCheckpoint(checkpoint('run-1', 10));
    await db.saveCheckpoint(checkpoint('run-1', 20));
    const runBefore = await db.getRun('run-1');

    // By the time the run is written, step 30 is stored and step 10 deleted inside the transaction.
    failNextPut('runs');
    await expect(db.saveCheckpoint(checkpoint('run-1', 30))).rejects.toThrow(StorageFullError);

    expect(await storedCheckpointKeys(name)).toEqual([
      ['run-1', 10],
      ['run-1', 20],
    ]);
    expect(await db.latestCheckpoint('run-1')).toEqual(checkpoint('run-1', 20));
    expect(await db.getRun('run-1')).toEqual(runBefore);
  });

  it('keeps the run and its checkpoints when detaching its adapters fails during deleteRun', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());
    await db.saveCheckpoint(checkpoint('run-1', 10));
    await db.saveAdapter(adapter());
    const runBefore = await db.getRun('run-1');

    // The run and its checkpoints are deleted inside the transaction before the adapter is written.
    failNextPut('adapters');
    await expect(db.deleteRun('run-1')).rejects.toThrow(StorageFullError);

    expect(await db.getRun('run-1')).toEqual(runBefore);
    expect(await storedCheckpointKeys(name)).toEqual([['run-1', 10]]);
    expect((await db.getAdapter('ad-1')).runId).toBe('run-1');
  });

  it('passes errors other than a full disk through unchanged', async () => {
    const db = await openTestDb(freshDbName());
    const boom = new DOMException('disk on fire', 'UnknownError');
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementationOnce(() => {
      throw boom;
    });
    await expect(db.saveDataset(dataset())).rejects.toBe(boom);
    expect(await db.listDatasets()).toEqual([]);
  });
});

describe('storage unavailable', () => {
  it('explains that IndexedDB is missing, as in some private windows', async () => {
    vi.stubGlobal('indexedDB', undefined);
    await expect(openWebtuneDb(freshDbName())).rejects.toThrow(StorageUnavailableError);
    await expect(openWebtuneDb(freshDbName())).rejects.toThrow(/normal browser window/);
  });

  it('explains a refused open', async () => {
    const refusal = new DOMException('The operation is insecure.', 'SecurityError');
    vi.stubGlobal('indexedDB', {
      open: () => {
        throw refusal;
      },
    });
    const error = await openWebtuneDb(freshDbName()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageUnavailableError);
    expect((error as Error).message).toMatch(/refused to open it \(SecurityError: The operation is insecure\.\)/);
    expect((error as Error).cause).toBe(refusal);
  });

  it('tells the user to reload when a newer webtune has upgraded the database', async () => {
    const name = freshDbName();
    (await openDB(name, DB_VERSION + 1)).close();
    await expect(openWebtuneDb(name)).rejects.toThrow(/newer version of webtune.*intact/);
  });

  it('steps aside when another tab upgrades the database, then reports why it stopped', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());

    // Would wait forever if this connection did not close on versionchange.
    const newer = await openDB(name, DB_VERSION + 1);
    expect(await newer.getAll('runs')).toHaveLength(1);
    newer.close();

    await expect(db.listRuns()).rejects.toThrow(StorageUnavailableError);
    await expect(db.listRuns()).rejects.toThrow(/another tab upgraded the storage.*Reload/);
  });
});

describe('estimateUsage', () => {
  it('reports usage and quota when the browser offers an estimate', async () => {
    const db = await openTestDb(freshDbName());
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 1_234, quota: 10_000 }) } });
    expect(await db.estimateUsage()).toEqual({ usage: 1_234, quota: 10_000 });
  });

  it('returns null without the Storage API', async () => {
    const db = await openTestDb(freshDbName());
    vi.stubGlobal('navigator', {});
    expect(await db.estimateUsage()).toBeNull();
    vi.stubGlobal('navigator', undefined);
    expect(await db.estimateUsage()).toBeNull();
  });
});

import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CHUNK_CHARS, RowChunker } from '../../src/storage/dataset-store';
import { DB_VERSION } from '../../src/storage/db';
import { DamagedRecordError, NotFoundError, StorageFullError } from '../../src/storage/errors';
import type { DatasetRow } from '../../src/data/types';
import { adapter, checkpoint, closeTestDbs, dataset, failNextPut, freshDbName, openTestDb, run } from './fixtures';

afterEach(() => {
  vi.unstubAllGlobals();
  closeTestDbs();
});

/** Changes one stored record in place, bypassing WebtuneDb, as damage on disk would. */
async function tamper<T>(name: string, store: string, key: IDBValidKey, change: (value: T) => void): Promise<void> {
  const raw = await openDB(name);
  try {
    const value = (await raw.get(store, key)) as T;
    change(value);
    await raw.put(store, value);
  } finally {
    raw.close();
  }
}

async function rawAll(name: string, store: string): Promise<unknown[]> {
  const raw = await openDB(name);
  try {
    return await raw.getAll(store);
  } finally {
    raw.close();
  }
}

/** Flips the lowest bit of byte `index` of a typed array's bytes. */
function flipByte(array: Float32Array, index = 0): void {
  new Uint8Array(array.buffer, array.byteOffset, array.byteLength)[index] ^= 1;
}

/** A database as version 2 left it: every store of version 2 and records without checksums, rows inline. */
async function createVersion2(name: string): Promise<void> {
  const v2 = await openDB(name, 2, {
    upgrade(db) {
      db.createObjectStore('datasets', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
      db.createObjectStore('runs', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
      db.createObjectStore('checkpoints', { keyPath: ['runId', 'step'] });
      const adapters = db.createObjectStore('adapters', { keyPath: 'id' });
      adapters.createIndex('createdAt', 'createdAt');
      adapters.createIndex('runId', 'runId');
      db.createObjectStore('modelFiles', { keyPath: ['modelId', 'path'] });
      db.createObjectStore('conversations', { keyPath: 'id' }).createIndex('updatedAt', 'updatedAt');
      db.createObjectStore('documents', { keyPath: 'name' }).createIndex('addedAt', 'addedAt');
      db.createObjectStore('documentIndex');
    },
  });
  await v2.put('datasets', dataset());
  await v2.put('runs', run({ lastCheckpointStep: 10 }));
  await v2.put('checkpoints', checkpoint('run-1', 10));
  await v2.put('adapters', adapter());
  v2.close();
}

const textRow = (i: number, chars: number): DatasetRow => ({ kind: 'text', text: `row ${i} ${'x'.repeat(chars)}` });

describe('records of version 2', () => {
  it('are read as they were written (no checksums), and everything written since carries them', async () => {
    const name = freshDbName();
    await createVersion2(name);
    const db = await openTestDb(name);
    expect(await db.getDataset('ds-1')).toEqual(dataset());
    expect(await db.listDatasets()).toEqual([(({ rows: _, ...summary }) => summary)(dataset())]);
    expect(await db.latestCheckpoint('run-1')).toEqual(checkpoint('run-1', 10));
    expect(await db.getAdapter('ad-1')).toEqual(adapter());

    await db.saveCheckpoint(checkpoint('run-1', 20));
    await db.saveAdapter(adapter({ id: 'ad-2' }));
    await db.saveDataset(dataset({ id: 'ds-2' }));
    db.close();
    const checkpoints = (await rawAll(name, 'checkpoints')) as { step: number; checksums?: Record<string, string> }[];
    expect(checkpoints.map((c) => [c.step, c.checksums === undefined])).toEqual([
      [10, true],
      [20, false],
    ]);
    expect(checkpoints[1].checksums!.params).toMatch(/^[0-9a-f]{64}$/);
    const adapters = (await rawAll(name, 'adapters')) as { id: string; tensors: { checksum?: string }[] }[];
    expect(adapters.map((a) => a.tensors.every((t) => t.checksum !== undefined))).toEqual([false, true]);
    const stored = (await rawAll(name, 'datasets')) as { id: string; rows?: unknown; chunks?: number }[];
    expect(stored.map((d) => [d.id, d.rows !== undefined, d.chunks])).toEqual([
      ['ds-1', true, undefined],
      ['ds-2', false, 1],
    ]);
    expect(DB_VERSION).toBe(3);
  });
});

describe('checksums', () => {
  it('refuse a checkpoint whose stored bytes changed, and a resume falls back to the newest intact one', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.createRun(run());
    await db.saveCheckpoint(checkpoint('run-1', 10));
    await db.saveCheckpoint(checkpoint('run-1', 20));
    await tamper<{ params: Float32Array }>(name, 'checkpoints', ['run-1', 20], (c) => flipByte(c.params, 5));

    const error = await db.latestCheckpoint('run-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DamagedRecordError);
    expect(error).toMatchObject({ kind: 'checkpoint', id: 'run-1@20' });
    expect((error as Error).message).toBe(
      'The checkpoint at step 20 of run "first run" is damaged: the stored adapter weights no longer match their checksum, ' +
        'so webtune will not use it. Resume from an older checkpoint of the run, or start it again.',
    );
    const intact = await db.latestIntactCheckpoint('run-1');
    expect(intact.checkpoint).toEqual(checkpoint('run-1', 10));
    expect(intact.damaged.map((e) => e.id)).toEqual(['run-1@20']);

    // The moments are checked as well: with both damaged nothing is left to resume from.
    await tamper<{ v: Float32Array }>(name, 'checkpoints', ['run-1', 10], (c) => flipByte(c.v, 23));
    const none = await db.latestIntactCheckpoint('run-1');
    expect(none.checkpoint).toBeNull();
    expect(none.damaged.map((e) => e.message)).toEqual([
      expect.stringContaining('step 20'),
      expect.stringContaining('step 10 of run "first run" is damaged: the stored AdamW second moments'),
    ]);
  });

  it('refuse an adapter with a changed tensor, naming the adapter and the tensor; its summary still lists', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.saveAdapter(adapter());
    await tamper<{ tensors: { data: Float32Array }[] }>(name, 'adapters', 'ad-1', (a) => flipByte(a.tensors[1].data, 31));
    const error = await db.getAdapter('ad-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DamagedRecordError);
    expect((error as Error).message).toMatch(
      /^The adapter "support adapter" is damaged: the stored values of tensor layers\.0\.q_proj\.lora_B no longer match/,
    );
    expect((await db.listAdapters()).map((a) => a.id)).toEqual(['ad-1']);
  });

  it('refuse a dataset with a changed or missing chunk of rows', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    await db.saveDataset(dataset());
    await tamper<{ json: string }>(name, 'datasetChunks', ['ds-1', 0], (c) => {
      c.json = c.json.replace('hello', 'hellO');
    });
    await expect(db.getDataset('ds-1')).rejects.toThrow(
      /^The dataset "support chats" is damaged: the stored rows of chunk 1 of 1 no longer match their checksum/,
    );
    const raw = await openDB(name);
    await raw.delete('datasetChunks', ['ds-1', 0]);
    raw.close();
    await expect(db.getDataset('ds-1')).rejects.toThrow(/the rows of chunk 1 of 1 are missing/);
  });
});

describe('datasets in chunks', () => {
  it('cuts rows into chunks of at most CHUNK_CHARS characters, a longer row alone', () => {
    const chunker = new RowChunker(150);
    const sizes: number[] = [];
    for (const row of [textRow(0, 30), textRow(1, 30), textRow(2, 30), textRow(3, 200), textRow(4, 1)]) {
      const chunk = chunker.add(row);
      if (chunk) sizes.push(chunk.rows);
    }
    sizes.push(chunker.flush()!.rows);
    expect(sizes).toEqual([2, 1, 1, 1]);
    expect(chunker.flush()).toBeNull();
  });

  it('stores a dataset larger than a chunk in several, and reads it back whole or chunk by chunk', async () => {
    const db = await openTestDb(freshDbName());
    const rows = Array.from({ length: 10 }, (_, i) => textRow(i, CHUNK_CHARS / 4));
    await db.saveDataset(dataset({ rows, rowCount: rows.length }));
    expect((await db.getDataset('ds-1')).rows).toEqual(rows);
    const seen: number[] = [];
    await db.datasets.forEachChunk('ds-1', (chunk, index) => {
      seen.push(index, chunk.length);
    });
    expect(seen).toEqual([0, 3, 1, 3, 2, 3, 3, 1]);
    // Saving over it replaces every chunk.
    await db.saveDataset(dataset());
    expect(await db.getDataset('ds-1')).toEqual(dataset());
    await db.deleteDataset('ds-1');
    await expect(db.getDataset('ds-1')).rejects.toThrow(NotFoundError);
  });

  it('keeps a streamed import invisible until its commit, and leaves nothing of one discarded or abandoned', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    const chunk = (from: number) => ({ rows: 2, json: JSON.stringify([textRow(from, 3), textRow(from + 1, 3)]) });
    for (const id of ['ds-a', 'ds-b', 'ds-c']) {
      await db.datasets.beginImport(id, `${id}.jsonl`);
      await db.datasets.writeImportChunk(id, 0, chunk(0), `${id}.jsonl`);
      await db.datasets.writeImportChunk(id, 1, chunk(2), `${id}.jsonl`);
    }
    expect(await db.listDatasets()).toEqual([]);
    await expect(db.getDataset('ds-a')).rejects.toThrow(NotFoundError);

    const { rows: _, ...summary } = dataset({ id: 'ds-a', rowCount: 4 });
    await db.datasets.commitImport(summary, 2);
    expect(await db.listDatasets()).toEqual([summary]);
    expect((await db.getDataset('ds-a')).rows).toEqual([0, 1, 2, 3].map((i) => textRow(i, 3)));

    await db.datasets.discardImport('ds-b');
    await expect(db.datasets.writeImportChunk('ds-b', 2, chunk(4), 'ds-b.jsonl')).rejects.toThrow(NotFoundError);
    // ds-c is still being written (by another tab, say): it stays; an abandoned one goes.
    await db.datasets.beginImport('ds-d', 'ds-d.jsonl');
    await db.datasets.writeImportChunk('ds-d', 0, chunk(0), 'ds-d.jsonl');
    expect(await db.datasets.removeAbandonedImports(new Set(['ds-c']))).toEqual(['ds-d']);
    expect((await db.datasets.pendingImports()).map((p) => p.id)).toEqual(['ds-c']);
    const chunks = (await rawAll(name, 'datasetChunks')) as { datasetId: string }[];
    expect([...new Set(chunks.map((c) => c.datasetId))].sort()).toEqual(['ds-a', 'ds-c']);
  });
});

describe('storage full', () => {
  it('names only what is used when the reported quota does not explain the failure', async () => {
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 3_510_000, quota: 10_737_418_240 + 3_510_000 }) } });
    const db = await openTestDb(freshDbName());
    await db.createRun(run());
    failNextPut('checkpoints');
    await expect(db.saveCheckpoint(checkpoint('run-1', 30))).rejects.toThrow(
      'the checkpoint at step 30 of run "first run" was not saved. It needs about 72 B; this site uses 3.51 MB. Everything saved before',
    );
  });

  it('says how much the write needed and how much of the quota is used', async () => {
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 9_999_990, quota: 10_000_000 }) } });
    const db = await openTestDb(freshDbName());
    await db.createRun(run());
    failNextPut('checkpoints');
    const error = await db.saveCheckpoint(checkpoint('run-1', 30)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageFullError);
    expect(error).toMatchObject({ bytes: 72, quota: { usage: 9_999_990, quota: 10_000_000 } });
    expect((error as Error).message).toBe(
      'Browser storage is full, so the checkpoint at step 30 of run "first run" was not saved. It needs about 72 B; this site uses ' +
        '10 MB of the 10 MB the browser allows it, so about 62 B more must be freed. Everything saved before is intact. ' +
        'Delete old runs, adapters or downloads in webtune (the model step lists what each download keeps), ' +
        'or free disk space on this device, then try again.',
    );
  });
});

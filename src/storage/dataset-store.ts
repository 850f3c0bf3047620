/**
 * Datasets (version 3): each dataset's rows in chunks of at most CHUNK_CHARS characters of JSON
 * text, each with its SHA-256, and a summary record in `datasets` that is written last, as the
 * commit marker: a dataset is listed and read only once all its chunks are stored.
 *
 * A small dataset (or one made from another, such as an enhanced copy) is written in one
 * transaction. A streamed import writes chunk after chunk while the file is read, each in its own
 * transaction, under a `pendingImports` record; committing writes the summary and removes that
 * record together. A tab closed or crashed in the middle leaves a pending record and some chunks
 * that no summary names: `removeAbandonedImports` deletes them on the next start (except imports
 * another tab is still writing). Nothing of a partial import is ever visible as a dataset.
 */
import type { DatasetRow } from '../data/types';
import { armedAt, holdForever, TEST_HOOKS } from '../testing/hooks';
import { checksumOf } from './checksum';
import type { WebtuneDb } from './db';
import { DamagedRecordError, found } from './errors';
import type { DatasetChunkRecord, DatasetRecord, DatasetSummary, PendingImportRecord, StoredDataset } from './records';

/** Characters of JSON per chunk: big enough that a 200 MB import is ~50 transactions, small enough to hold a few in memory. */
export const CHUNK_CHARS = 4 * 2 ** 20;

/** A chunk of rows as it will be stored, before its checksum. */
export interface RowChunk {
  rows: number;
  json: string;
}

/** Cuts a stream of rows into chunks of at most CHUNK_CHARS characters (a single longer row makes a chunk of its own). */
export class RowChunker {
  #parts: string[] = [];
  #chars = 0;

  constructor(private readonly maxChars = CHUNK_CHARS) {}

  /** Adds a row; returns the chunk it completed, if any (the rows before this one). */
  add(row: DatasetRow): RowChunk | null {
    const json = JSON.stringify(row);
    const done = this.#chars > 0 && this.#chars + json.length + 1 > this.maxChars ? this.flush() : null;
    this.#parts.push(json);
    this.#chars += json.length + 1;
    return done;
  }

  /** The rows added since the last chunk, as one; null when there are none. */
  flush(): RowChunk | null {
    if (this.#parts.length === 0) return null;
    const chunk = { rows: this.#parts.length, json: `[${this.#parts.join(',')}]` };
    this.#parts = [];
    this.#chars = 0;
    return chunk;
  }
}

/** Arrays sort after every number, so `[id, []]` bounds all of a dataset's chunks. */
function chunksOf(id: string): IDBKeyRange {
  return IDBKeyRange.bound([id], [id, []]);
}

function summaryOf(stored: StoredDataset): DatasetSummary {
  const { rows: _, chunks: __, ...summary } = stored;
  return summary;
}

export class DatasetStore {
  constructor(private readonly db: WebtuneDb) {}

  /** Stores a whole dataset in one transaction: its chunks, then its summary. */
  async save(dataset: DatasetRecord): Promise<void> {
    const { rows, ...summary } = dataset;
    const chunker = new RowChunker();
    const chunks: RowChunk[] = [];
    for (const row of rows) {
      const chunk = chunker.add(row);
      if (chunk) chunks.push(chunk);
    }
    const last = chunker.flush();
    if (last) chunks.push(last);
    const records = await Promise.all(chunks.map((c, index) => chunkRecord(dataset.id, index, c)));
    const bytes = chunks.reduce((sum, c) => sum + c.json.length, 0);
    await this.db.writeTx(
      ['datasets', 'datasetChunks'],
      () => `the dataset "${dataset.name}"`,
      async (tx) => {
        const store = tx.objectStore('datasetChunks');
        // Saving over a dataset replaces all of its rows.
        await store.delete(chunksOf(dataset.id));
        for (const record of records) await store.put(record);
        await tx.objectStore('datasets').put({ ...summary, chunks: records.length });
      },
      bytes,
    );
  }

  async get(id: string): Promise<DatasetRecord> {
    const rows: DatasetRow[] = [];
    const summary = await this.forEachChunk(id, (chunk) => {
      for (const row of chunk) rows.push(row);
    });
    return { ...summary, rows };
  }

  /**
   * Reads a dataset chunk by chunk, each checked against its checksum before `visit` sees its
   * rows, so a large dataset is never held whole; returns its summary.
   */
  async forEachChunk(id: string, visit: (rows: DatasetRow[], index: number) => void | Promise<void>): Promise<DatasetSummary> {
    const stored = await this.db.readTx(['datasets'], async (tx) => found('dataset', id, await tx.store.get(id)));
    if (stored.rows) {
      await visit(stored.rows, 0);
      return summaryOf(stored);
    }
    for (let index = 0; index < stored.chunks; index++) {
      // One transaction per chunk: a transaction must not wait on the checksum between requests.
      const chunk = await this.db.readTx(['datasetChunks'], (tx) => tx.store.get([id, index]));
      if (!chunk) throw damaged(stored, index, true);
      if ((await checksumOf(chunk.json)) !== chunk.checksum) throw damaged(stored, index, false);
      await visit(JSON.parse(chunk.json) as DatasetRow[], index);
    }
    return summaryOf(stored);
  }

  /** Newest first, without the rows. */
  async list(): Promise<DatasetSummary[]> {
    return this.db.readTx(['datasets'], async (tx) => {
      const summaries: DatasetSummary[] = [];
      for (let c = await tx.store.index('createdAt').openCursor(null, 'prev'); c; c = await c.continue())
        summaries.push(summaryOf(c.value));
      return summaries;
    });
  }

  async rename(id: string, name: string): Promise<void> {
    await this.db.writeTx(
      ['datasets'],
      () => `the new name "${name}" of dataset ${id}`,
      async (tx) => {
        const record = found('dataset', id, await tx.store.get(id));
        await tx.store.put({ ...record, name });
      },
    );
  }

  async delete(id: string): Promise<void> {
    await this.db.writeTx(
      ['datasets', 'datasetChunks'],
      () => `the removal of dataset ${id}`,
      async (tx) => {
        await tx.objectStore('datasets').delete(id);
        await tx.objectStore('datasetChunks').delete(chunksOf(id));
      },
    );
  }

  // Streamed imports

  /** Opens an import under the id its dataset will have; nothing of it is listed until `commitImport`. */
  async beginImport(id: string, fileName: string): Promise<void> {
    await this.db.writeTx(
      ['pendingImports'],
      () => `the import of ${fileName}`,
      (tx) => tx.store.put({ id, createdAt: Date.now(), fileName }),
    );
  }

  /** Writes chunk `index` of a pending import in its own transaction. */
  async writeImportChunk(id: string, index: number, chunk: RowChunk, fileName: string): Promise<void> {
    const record = await chunkRecord(id, index, chunk);
    await this.db.writeTx(
      ['pendingImports', 'datasetChunks'],
      () => `rows ${index === 0 ? '' : 'further '}of ${fileName}`,
      async (tx) => {
        // A discarded or abandoned import must not gain chunks that nothing would remove.
        const pending = tx.objectStore('pendingImports');
        found('import', id, await pending.get(id));
        await tx.objectStore('datasetChunks').put(record);
        if (TEST_HOOKS && armedAt('import:inside-chunk', index + 1) === 'hold') await holdForever(() => pending.count());
      },
      chunk.json.length,
    );
  }

  /** Writes the dataset's summary and closes the import, in one transaction: from here on it is a dataset. */
  async commitImport(summary: DatasetSummary, chunks: number): Promise<void> {
    await this.db.writeTx(
      ['pendingImports', 'datasets'],
      () => `the dataset "${summary.name}"`,
      async (tx) => {
        const pending = tx.objectStore('pendingImports');
        found('import', summary.id, await pending.get(summary.id));
        await tx.objectStore('datasets').put({ ...summary, chunks });
        await pending.delete(summary.id);
        if (TEST_HOOKS && armedAt('import:inside-commit', chunks) === 'hold') await holdForever(() => pending.count());
      },
    );
  }

  /** Removes a pending import and every chunk it wrote. */
  async discardImport(id: string): Promise<void> {
    await this.db.writeTx(
      ['pendingImports', 'datasetChunks'],
      () => `the removal of an unfinished import`,
      async (tx) => {
        await tx.objectStore('datasetChunks').delete(chunksOf(id));
        await tx.objectStore('pendingImports').delete(id);
      },
    );
  }

  /** Pending imports, oldest first. */
  async pendingImports(): Promise<PendingImportRecord[]> {
    return this.db.readTx(['pendingImports'], (tx) => tx.store.getAll());
  }

  /** Discards every pending import that `live` does not name (imports that this or another tab is writing); returns their ids. */
  async removeAbandonedImports(live: ReadonlySet<string>): Promise<string[]> {
    const abandoned = (await this.pendingImports()).filter((p) => !live.has(p.id)).map((p) => p.id);
    for (const id of abandoned) await this.discardImport(id);
    return abandoned;
  }
}

async function chunkRecord(datasetId: string, index: number, chunk: RowChunk): Promise<DatasetChunkRecord> {
  return { datasetId, index, rows: chunk.rows, json: chunk.json, checksum: await checksumOf(chunk.json) };
}

function damaged(stored: StoredDataset, index: number, missing: boolean): DamagedRecordError {
  const part = `rows of chunk ${index + 1} of ${stored.chunks}`;
  return new DamagedRecordError(
    'dataset',
    stored.id,
    `The dataset "${stored.name}"`,
    part,
    'Delete the dataset and import it again.',
    missing ? `the ${part} are missing` : undefined,
  );
}

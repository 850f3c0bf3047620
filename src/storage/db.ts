/**
 * Everything webtune keeps between page loads: datasets, runs with their checkpoints, trained
 * adapters, downloaded model files, and (from version 2) chat conversations and the documents
 * chat answers from with their passage index, in one IndexedDB database. The chat records are read
 * and written through `db.chat` (chat-store.ts), datasets through `db.datasets` (dataset-store.ts),
 * downloaded files through `db.modelFiles` (model-file-store.ts).
 *
 * Each method is one transaction, so a failure (a full disk, a closed tab) leaves either the old
 * records or the new ones, never a mix. From version 3 every stored tensor and every chunk of
 * dataset rows carries its SHA-256, checked on every read (sealed.ts, dataset-store.ts).
 */

import { openDB, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { DB_VERSION, type Store, upgradeSchema, type WebtuneSchema } from './schema';
import { DamagedRecordError, found, StorageFullError, StorageUnavailableError, isQuotaExceeded, type StoredKind } from './errors';
import { ChatStore } from './chat-store';
import { DatasetStore } from './dataset-store';
import { ModelFileStore } from './model-file-store';
import type {
  AdapterRecord,
  AdapterSummary,
  CheckpointRecord,
  DatasetRecord,
  DatasetSummary,
  HistoryPoint,
  RunPatch,
  RunRecord,
  StorageUsage,
  StoredCheckpoint,
} from './records';
import { sealAdapter, sealCheckpoint, unsealAdapter, unsealCheckpoint } from './sealed';
import { armedAt, holdForever, type HookPoint, TEST_HOOKS } from '../testing/hooks';

export type * from './records';

export { DB_VERSION, type Store, type WebtuneSchema } from './schema';

/** Ids are random rather than counters so that two tabs creating records at once never collide. */
export function newId(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}

export async function openWebtuneDb(name = 'webtune'): Promise<WebtuneDb> {
  if (typeof indexedDB === 'undefined') {
    throw new StorageUnavailableError(
      'this browser does not offer it here (some private windows and embedded browsers turn it off). ' +
        'Open webtune in a normal browser window.',
    );
  }
  try {
    return new WebtuneDb(await openDB<WebtuneSchema>(name, DB_VERSION, { upgrade: upgradeSchema }));
  } catch (error) {
    if (error instanceof Error && error.name === 'VersionError') {
      throw new StorageUnavailableError(
        'it was last used by a newer version of webtune. Reload the page to get the newest version; your data is intact.',
        { cause: error },
      );
    }
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new StorageUnavailableError(
      `the browser refused to open it (${detail}). This happens in private windows of some browsers and when ` +
        'site data is blocked; open webtune in a normal window or allow site data for this site.',
      { cause: error },
    );
  }
}

function checkpointsOf(runId: string): IDBKeyRange {
  return IDBKeyRange.bound([runId, -Infinity], [runId, Infinity]);
}

export class WebtuneDb {
  readonly #db: IDBPDatabase<WebtuneSchema>;
  /** Why the connection can no longer be used, once another tab or the browser took it away. */
  #lost: string | null = null;
  /** Conversations, documents and their passage index. */
  readonly chat: ChatStore = new ChatStore(this);
  /** Datasets, their row chunks and streamed imports. */
  readonly datasets: DatasetStore = new DatasetStore(this);
  /** Downloaded model files, dataset downloads and saved folder handles. */
  readonly modelFiles: ModelFileStore = new ModelFileStore(this);

  constructor(db: IDBPDatabase<WebtuneSchema>) {
    this.#db = db;
    db.addEventListener('versionchange', (event) => {
      // Holding on would block the other tab's upgrade or deletion until this tab is closed.
      db.close();
      this.#lost =
        event.newVersion === null
          ? 'webtune storage was deleted in another tab. Reload this page.'
          : 'a newer webtune in another tab upgraded the storage. Reload this page to continue; your data is intact.';
    });
    db.addEventListener('close', () => {
      this.#lost = 'the browser closed the database, for example because site data was cleared. Reload this page.';
    });
  }

  close(): void {
    this.#db.close();
  }

  async estimateUsage(): Promise<StorageUsage | null> {
    if (typeof navigator === 'undefined' || !navigator.storage?.estimate) return null;
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    return { usage, quota };
  }

  // Datasets (dataset-store.ts)

  async saveDataset(dataset: DatasetRecord): Promise<void> {
    await this.datasets.save(dataset);
  }

  /** The dataset with all its rows, each chunk checked against its checksum. */
  async getDataset(id: string): Promise<DatasetRecord> {
    return this.datasets.get(id);
  }

  /** Newest first, without the rows. */
  async listDatasets(): Promise<DatasetSummary[]> {
    return this.datasets.list();
  }

  async renameDataset(id: string, name: string): Promise<void> {
    await this.datasets.rename(id, name);
  }

  async deleteDataset(id: string): Promise<void> {
    await this.datasets.delete(id);
  }

  // Runs

  async createRun(run: RunRecord): Promise<void> {
    await this.#write(
      ['runs'],
      () => `the run "${run.name}"`,
      (tx) => tx.store.add(run),
    );
  }

  async getRun(id: string): Promise<RunRecord> {
    return this.#read(['runs'], async (tx) => found('run', id, await tx.store.get(id)));
  }

  /** Newest first. */
  async listRuns(): Promise<RunRecord[]> {
    return this.#read(['runs'], async (tx) => (await tx.store.index('createdAt').getAll()).reverse());
  }

  async updateRun(id: string, patch: RunPatch): Promise<RunRecord> {
    let label = `run ${id}`;
    return this.#write(
      ['runs'],
      () => `the changes to ${label}`,
      async (tx) => {
        const run = found('run', id, await tx.store.get(id));
        label = `run "${run.name}"`;
        const updated: RunRecord = { ...run, ...patch, updatedAt: Date.now() };
        await tx.store.put(updated);
        return updated;
      },
    );
  }

  async appendHistory(id: string, points: HistoryPoint[]): Promise<void> {
    let label = `run ${id}`;
    await this.#write(
      ['runs'],
      () => `the latest training progress of ${label}`,
      async (tx) => {
        const run = found('run', id, await tx.store.get(id));
        label = `run "${run.name}"`;
        await tx.store.put({ ...run, history: [...run.history, ...points], updatedAt: Date.now() });
      },
    );
  }

  /** Also removes the run's checkpoints; adapters it trained are kept, detached from it. */
  async deleteRun(id: string): Promise<void> {
    await this.#write(
      ['runs', 'checkpoints', 'adapters'],
      () => `the removal of run ${id}`,
      async (tx) => {
        // Requests are awaited one by one: if one throws, none is left behind to reject unobserved.
        await tx.objectStore('runs').delete(id);
        await tx.objectStore('checkpoints').delete(checkpointsOf(id));
        const adapters = tx.objectStore('adapters');
        for (const adapter of await adapters.index('runId').getAll(id)) await adapters.put({ ...adapter, runId: null });
      },
    );
  }

  // Checkpoints

  /**
   * Stores the checkpoint with its checksums, drops the run's older ones beyond the newest `keep`
   * and records the newest step on the run, all in one transaction.
   */
  async saveCheckpoint(checkpoint: CheckpointRecord, keep = 2): Promise<void> {
    if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${keep}`);
    const { runId, step } = checkpoint;
    const sealed = await sealCheckpoint(checkpoint);
    let label = `run ${runId}`;
    await this.#write(
      ['runs', 'checkpoints'],
      () => `the checkpoint at step ${step} of ${label}`,
      async (tx) => {
        const runs = tx.objectStore('runs');
        const checkpoints = tx.objectStore('checkpoints');
        const hold = async (point: HookPoint) => {
          if (armedAt(point, step) === 'hold') await holdForever(() => runs.count());
        };
        const run = found('run', runId, await runs.get(runId));
        label = `run "${run.name}"`;
        await checkpoints.put(sealed);
        if (TEST_HOOKS) await hold('checkpoint:after-put');
        const keys = await checkpoints.getAllKeys(checkpointsOf(runId));
        for (const key of keys.slice(0, -keep)) await checkpoints.delete(key);
        if (TEST_HOOKS) await hold('checkpoint:after-prune');
        await runs.put({ ...run, lastCheckpointStep: keys[keys.length - 1][1], updatedAt: Date.now() });
        if (TEST_HOOKS) await hold('checkpoint:before-commit');
      },
      checkpoint.params.byteLength + checkpoint.m.byteLength + checkpoint.v.byteLength,
    );
  }

  /** The newest checkpoint, checked against its checksums (DamagedRecordError when it does not match); null when there is none. */
  async latestCheckpoint(runId: string): Promise<CheckpointRecord | null> {
    const { checkpoints, runName } = await this.#checkpoints(runId);
    const newest = checkpoints.at(-1);
    return newest ? unsealCheckpoint(newest, runName) : null;
  }

  /**
   * The newest checkpoint whose checksums match, and the newer ones that did not (newest first):
   * a resume starts from the last intact state and says which checkpoints it had to skip.
   */
  async latestIntactCheckpoint(runId: string): Promise<{ checkpoint: CheckpointRecord | null; damaged: DamagedRecordError[] }> {
    const { checkpoints, runName } = await this.#checkpoints(runId);
    const damaged: DamagedRecordError[] = [];
    for (const stored of checkpoints.reverse()) {
      try {
        return { checkpoint: await unsealCheckpoint(stored, runName), damaged };
      } catch (error) {
        if (!(error instanceof DamagedRecordError)) throw error;
        damaged.push(error);
      }
    }
    return { checkpoint: null, damaged };
  }

  /** A run's stored checkpoints, oldest first, with the run's name for messages. */
  async #checkpoints(runId: string): Promise<{ checkpoints: StoredCheckpoint[]; runName: string }> {
    return this.#read(['runs', 'checkpoints'], async (tx) => {
      const run = await tx.objectStore('runs').get(runId);
      return { checkpoints: await tx.objectStore('checkpoints').getAll(checkpointsOf(runId)), runName: run?.name ?? runId };
    });
  }

  // Adapters

  async saveAdapter(adapter: AdapterRecord): Promise<void> {
    const sealed = await sealAdapter(adapter);
    await this.#write(
      ['adapters'],
      () => `the adapter "${adapter.name}"`,
      (tx) => tx.store.put(sealed),
      adapter.tensors.reduce((sum, t) => sum + t.data.byteLength, 0),
    );
  }

  /** The adapter with its tensors, each checked against its checksum (DamagedRecordError when one does not match). */
  async getAdapter(id: string): Promise<AdapterRecord> {
    return unsealAdapter(await this.#read(['adapters'], async (tx) => found('adapter', id, await tx.store.get(id))));
  }

  /** Newest first, without the tensors. */
  async listAdapters(): Promise<AdapterSummary[]> {
    return this.#read(['adapters'], async (tx) => {
      const summaries: AdapterSummary[] = [];
      for (let c = await tx.store.index('createdAt').openCursor(null, 'prev'); c; c = await c.continue()) {
        const { tensors: _, ...summary } = c.value;
        summaries.push(summary);
      }
      return summaries;
    });
  }

  async renameAdapter(id: string, name: string): Promise<void> {
    await this.#rename('adapters', 'adapter', id, name);
  }

  async deleteAdapter(id: string): Promise<void> {
    await this.#write(
      ['adapters'],
      () => `the removal of adapter ${id}`,
      (tx) => tx.store.delete(id),
    );
  }

  async #rename(store: 'adapters', kind: StoredKind, id: string, name: string): Promise<void> {
    await this.#write(
      [store],
      () => `the new name "${name}" of ${kind} ${id}`,
      async (tx) => {
        const record = found(kind, id, await tx.store.get(id));
        await tx.store.put({ ...record, name });
      },
    );
  }

  #read<const Names extends readonly Store[], T>(
    stores: Names,
    body: (tx: IDBPTransaction<WebtuneSchema, Names, 'readonly'>) => Promise<T>,
  ): Promise<T> {
    return this.#transact(stores, 'readonly', null, body);
  }

  /** `unsaved` names what the write would have stored and `bytes` about how large it is, for the message when storage is full. */
  #write<const Names extends readonly Store[], T>(
    stores: Names,
    unsaved: () => string,
    body: (tx: IDBPTransaction<WebtuneSchema, Names, 'readwrite'>) => Promise<T>,
    bytes?: number,
  ): Promise<T> {
    return this.#transact(stores, 'readwrite', unsaved, body, bytes ?? null);
  }

  /** One read-only transaction, for the record groups kept in modules of their own (chat-store.ts, dataset-store.ts,
   * model-file-store.ts). */
  readTx<const Names extends readonly Store[], T>(
    stores: Names,
    body: (tx: IDBPTransaction<WebtuneSchema, Names, 'readonly'>) => Promise<T>,
  ): Promise<T> {
    return this.#read(stores, body);
  }

  /** One read-write transaction with the same rollback and full-disk handling as every write here. */
  writeTx<const Names extends readonly Store[], T>(
    stores: Names,
    unsaved: () => string,
    body: (tx: IDBPTransaction<WebtuneSchema, Names, 'readwrite'>) => Promise<T>,
    bytes?: number,
  ): Promise<T> {
    return this.#write(stores, unsaved, body, bytes);
  }

  async #transact<const Names extends readonly Store[], Mode extends IDBTransactionMode, T>(
    stores: Names,
    mode: Mode,
    unsaved: (() => string) | null,
    body: (tx: IDBPTransaction<WebtuneSchema, Names, Mode>) => Promise<T>,
    bytes: number | null = null,
  ): Promise<T> {
    if (this.#lost) throw new StorageUnavailableError(this.#lost);
    const tx = this.#db.transaction(stores, mode);
    try {
      const result = await body(tx);
      await tx.done;
      return result;
    } catch (error) {
      // A failure in our own code (a missing record, a throwing put) must not let earlier writes commit.
      try {
        tx.abort();
      } catch {
        // The transaction already ended: the browser aborted it for the same error.
      }
      await tx.done.catch(() => undefined);
      // Browsers report a full disk on the request or, when committing, only on the transaction.
      if (unsaved && (isQuotaExceeded(error) || isQuotaExceeded(tx.error))) {
        const quota = await this.estimateUsage().catch(() => null);
        throw new StorageFullError(unsaved(), { cause: error, bytes, quota });
      }
      throw error;
    }
  }
}

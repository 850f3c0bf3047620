/**
 * The database's layout: its stores with their keys and indexes, and the upgrade from each older
 * version. db.ts opens it and owns every transaction.
 */
import type { DBSchema, IDBPDatabase, StoreNames } from 'idb';
import type { SerializedIndex } from '../rag/search-index';
import type {
  ConversationRecord,
  DatasetChunkRecord,
  DocumentRecord,
  ModelFileRecord,
  PendingImportRecord,
  RunRecord,
  StoredAdapter,
  StoredCheckpoint,
  StoredDataset,
} from './records';

export const DB_VERSION = 3;

export interface WebtuneSchema extends DBSchema {
  datasets: { key: string; value: StoredDataset; indexes: { createdAt: number } };
  /** From version 3: the rows of each dataset, in chunks. */
  datasetChunks: { key: [datasetId: string, index: number]; value: DatasetChunkRecord };
  /** From version 3: imports whose chunks are being written, or wait to be confirmed. */
  pendingImports: { key: string; value: PendingImportRecord };
  runs: { key: string; value: RunRecord; indexes: { createdAt: number } };
  checkpoints: { key: [runId: string, step: number]; value: StoredCheckpoint };
  adapters: { key: string; value: StoredAdapter; indexes: { createdAt: number; runId: string } };
  modelFiles: { key: [modelId: string, path: string]; value: ModelFileRecord };
  conversations: { key: string; value: ConversationRecord; indexes: { updatedAt: number } };
  documents: { key: string; value: DocumentRecord; indexes: { addedAt: number } };
  /** One entry, DOCUMENT_INDEX_KEY: the passages of every stored document and their BM25 index. */
  documentIndex: { key: string; value: SerializedIndex };
}

export type Store = StoreNames<WebtuneSchema>;

/** Each step brings the database from the version before it, so a fresh database runs them all. */
export function upgradeSchema(db: IDBPDatabase<WebtuneSchema>, oldVersion: number): void {
  if (oldVersion < 1) {
    db.createObjectStore('datasets', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
    db.createObjectStore('runs', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
    db.createObjectStore('checkpoints', { keyPath: ['runId', 'step'] });
    const adapters = db.createObjectStore('adapters', { keyPath: 'id' });
    adapters.createIndex('createdAt', 'createdAt');
    adapters.createIndex('runId', 'runId');
    db.createObjectStore('modelFiles', { keyPath: ['modelId', 'path'] });
  }
  // Version 2 only adds stores, so the records of version 1 stay as they are.
  if (oldVersion < 2) {
    db.createObjectStore('conversations', { keyPath: 'id' }).createIndex('updatedAt', 'updatedAt');
    db.createObjectStore('documents', { keyPath: 'name' }).createIndex('addedAt', 'addedAt');
    db.createObjectStore('documentIndex');
  }
  // Version 3 adds the chunked rows and pending imports. Datasets, checkpoints and adapters of
  // version 2 stay as they are (rows inline, no checksums) and are read as such.
  if (oldVersion < 3) {
    db.createObjectStore('datasetChunks', { keyPath: ['datasetId', 'index'] });
    db.createObjectStore('pendingImports', { keyPath: 'id' });
  }
}

/**
 * The modelFiles store: downloaded model files (whole records, or the chunks and finishing record
 * download-store.ts writes), cached dataset downloads (dataset-downloads.ts) and saved folder
 * handles (folder-handles.ts), keyed by [modelId, path]. Each method is one transaction of the
 * database's (db.ts), with its rollback and full-disk handling.
 */
import type { WebtuneDb } from './db';
import type { CachedModelSummary, ModelFileRecord } from './records';

/** Arrays sort after every string, so `[modelId, []]` bounds all of the model's paths. */
function filesOf(modelId: string): IDBKeyRange {
  return IDBKeyRange.bound([modelId], [modelId, []]);
}

export class ModelFileStore {
  constructor(private readonly db: WebtuneDb) {}

  async put(file: ModelFileRecord): Promise<void> {
    await this.db.writeTx(
      ['modelFiles'],
      () => `the download of ${file.path} of ${file.modelId}`,
      (tx) => tx.store.put(file),
    );
  }

  /** Null when the file is not cached. */
  async get(modelId: string, path: string): Promise<ModelFileRecord | null> {
    return this.db.readTx(['modelFiles'], async (tx) => (await tx.store.get([modelId, path])) ?? null);
  }

  async list(modelId: string): Promise<ModelFileRecord[]> {
    return this.db.readTx(['modelFiles'], (tx) => tx.store.getAll(filesOf(modelId)));
  }

  /** One entry per model with cached files, in model id order, to show what can be freed. */
  async listModels(): Promise<CachedModelSummary[]> {
    return this.db.readTx(['modelFiles'], async (tx) => {
      const models = new Map<string, CachedModelSummary>();
      // Stored blobs are handles to data on disk, so walking the records reads no file contents.
      for (let c = await tx.store.openCursor(); c; c = await c.continue()) {
        const { modelId, revision, size, chunks, chunkOf, directory } = c.value;
        if (directory) continue;
        const model = models.get(modelId) ?? { modelId, revision, fileCount: 0, size: 0 };
        // A chunked file's bytes are counted in its chunks, finished or not; the file once, by its record.
        if (chunkOf === undefined) model.fileCount += 1;
        if (chunks === undefined) model.size += size;
        models.set(modelId, model);
      }
      return [...models.values()];
    });
  }

  /** Removes every file of the model. */
  async deleteModel(modelId: string): Promise<void> {
    await this.db.writeTx(
      ['modelFiles'],
      () => `the removal of model ${modelId}`,
      (tx) => tx.store.delete(filesOf(modelId)),
    );
  }
}

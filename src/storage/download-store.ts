/**
 * Where downloaded model files are kept while they arrive and after: in chunks, so a multi-gigabyte
 * checkpoint never sits whole in memory, an interrupted download keeps what it had, and a finished
 * file is read back by range.
 *
 * The Origin Private File System comes first. In the engine's worker a sync access handle writes
 * each piece in place as it arrives, so nothing collects in memory; `flush` makes every 16 MiB
 * chunk durable before it counts as stored; and a finished file is one File whose slices the
 * browser reads from disk. (`createWritable` is not used: Chromium writes it to a swap file that
 * replaces the file only on `close`, so a reload mid-download would lose all since the open.)
 * IndexedDB chunks in the modelFiles store are the fallback where OPFS or its sync handles are
 * missing (Node and its tests, a page's main thread, Firefox's private windows, older Safari):
 * each chunk is collected in memory and stored as one Blob record. Either way the file's own
 * record in modelFiles, written last, says it is finished and where its bytes are, so the cache is
 * listed and cleared in one place, and no schema change is needed.
 */
import { blobFile, chunkedFile, type RangedFile } from '../model/file-source';
import type { WebtuneDb } from './db';
import { opfsDownloads } from './download-opfs';
import type { ModelFileRecord } from './records';

/** 16 MiB: what a resumed download may fetch again, and what the IndexedDB writer holds in memory. */
export const DOWNLOAD_CHUNK_BYTES = 16 * 2 ** 20;

export interface StoredDownload {
  size: number;
  /** Hex, when it was known and checked. */
  sha256: string | null;
  file: RangedFile;
}

export interface DownloadWriter {
  /** Bytes of the file stored so far: where the next write lands. */
  readonly written: number;
  write(bytes: Uint8Array): Promise<void>;
  /** Stores the rest and records the file as finished. */
  finish(sha256: string | null): Promise<StoredDownload>;
  /** An interrupted download: keeps the whole chunks written so far for a resume, drops the rest. */
  keep(): Promise<void>;
  /** A refused download: nothing of it stays. */
  discard(): Promise<void>;
}

export interface DownloadStore {
  readonly kind: 'opfs' | 'indexeddb';
  readonly chunkBytes: number;
  /** The finished files of this model, by path. */
  finished(): Promise<Map<string, StoredDownload>>;
  /** The whole chunks an interrupted download of `path` left, null when none did. */
  partial(path: string): Promise<RangedFile | null>;
  /** Writes `path` after its first `offset` bytes (its partial's size, or 0 to start over). */
  writer(path: string, offset: number): Promise<DownloadWriter>;
}

/** The backend's side: partial files and writers. Finished files are read the same for both. */
export interface ChunkBackend {
  kind: DownloadStore['kind'];
  partial(path: string): Promise<RangedFile | null>;
  /** Writes from `offset` on; `done` stores the file's record, written last. */
  writer(path: string, offset: number, done: (extra: Partial<ModelFileRecord>, size: number) => Promise<void>): Promise<DownloadWriter>;
  /** A finished file's bytes, when this backend holds them. */
  read(record: ModelFileRecord): Promise<RangedFile | null>;
  /** Removes what this backend holds of `path`. */
  remove(path: string): Promise<void>;
}

export class DownloadBusyError extends Error {
  override name = 'DownloadBusyError';
}

export interface DownloadStoreOptions {
  chunkBytes?: number;
  /** 'indexeddb' skips OPFS even where it exists. */
  prefer?: DownloadStore['kind'];
}

/** The chunk records of `path` sort right after its own record and cannot be a Hub path (no NUL there). */
export const chunkKey = (path: string, index: number) => `${path}\u0000${String(index).padStart(6, '0')}`;

export async function openDownloadStore(
  db: WebtuneDb,
  modelId: string,
  revision: string,
  options: DownloadStoreOptions = {},
): Promise<DownloadStore> {
  const chunkBytes = options.chunkBytes ?? DOWNLOAD_CHUNK_BYTES;
  const idb = idbChunks(db, modelId, revision, chunkBytes);
  const opfs = options.prefer === 'indexeddb' ? null : await opfsDownloads(modelId, chunkBytes);
  const backend = opfs ?? idb;
  const done = (path: string) => async (extra: Partial<ModelFileRecord>, size: number) => {
    await db.modelFiles.put({ modelId, path, revision, size, blob: new Blob([]), ...extra });
  };
  const removeRecord = (path: string) =>
    db.writeTx(
      ['modelFiles'],
      () => `the removal of ${path}`,
      (tx) => tx.store.delete([modelId, path]),
    );
  return {
    kind: backend.kind,
    chunkBytes,
    async finished() {
      const records = await db.modelFiles.list(modelId);
      const chunks = new Map<string, ModelFileRecord[]>();
      for (const r of records) if (r.chunkOf !== undefined) chunks.set(r.chunkOf, [...(chunks.get(r.chunkOf) ?? []), r]);
      const out = new Map<string, StoredDownload>();
      for (const record of records) {
        if (record.chunkOf !== undefined || record.directory) continue;
        let file: RangedFile | null;
        if (record.opfs) file = opfs ? await opfs.read(record) : null;
        else if (record.chunks !== undefined) {
          const parts = (chunks.get(record.path) ?? []).sort((a, b) => a.chunk! - b.chunk!);
          file = parts.length === record.chunks ? chunkedFile(parts.map((p) => p.blob)) : null;
        } else file = blobFile(record.blob);
        // A record whose bytes are gone (OPFS cleared on its own, or unreadable here) is downloaded again.
        if (file && file.size === record.size) out.set(record.path, { size: record.size, sha256: record.sha256 ?? null, file });
      }
      return out;
    },
    partial: (path) => backend.partial(path),
    async writer(path, offset) {
      // Whatever else was kept of this file goes: a finished copy from another revision, the other backend's chunks.
      await removeRecord(path);
      if (backend !== idb) await idb.remove(path);
      else if (opfs) await opfs.remove(path);
      return backend.writer(path, offset, done(path));
    },
  };
}

function idbChunks(db: WebtuneDb, modelId: string, revision: string, chunkBytes: number): ChunkBackend {
  const chunksOf = async (path: string) =>
    (await db.modelFiles.list(modelId)).filter((r) => r.chunkOf === path).sort((a, b) => a.chunk! - b.chunk!);
  const remove = async (path: string, from = 0) => {
    const keys = (await chunksOf(path)).filter((r) => r.chunk! >= from).map((r) => r.path);
    if (keys.length === 0) return;
    await db.writeTx(
      ['modelFiles'],
      () => `the removal of ${path}`,
      async (tx) => {
        for (const key of keys) await tx.store.delete([modelId, key]);
      },
    );
  };
  const chunkRecord = (path: string, index: number, blob: Blob): ModelFileRecord => ({
    modelId,
    path: chunkKey(path, index),
    revision,
    size: blob.size,
    blob,
    chunkOf: path,
    chunk: index,
  });
  return {
    kind: 'indexeddb',
    async partial(path) {
      const parts: Blob[] = [];
      // Only an unbroken run of whole chunks from the start counts.
      for (const [i, r] of (await chunksOf(path)).entries()) {
        if (r.chunk !== i || r.size !== chunkBytes) break;
        parts.push(r.blob);
      }
      return parts.length ? chunkedFile(parts) : null;
    },
    async read() {
      return null;
    },
    remove: (path) => remove(path),
    async writer(path, offset, done) {
      if (offset % chunkBytes !== 0) throw new RangeError(`a download resumes at a chunk boundary, not at byte ${offset}`);
      let index = offset / chunkBytes;
      await remove(path, index);
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      let written = offset;
      const store = async (parts: Uint8Array[]) => {
        const blob = new Blob(parts as BlobPart[]);
        await db.modelFiles.put(chunkRecord(path, index, blob));
        index += 1;
        written += blob.size;
      };
      return {
        get written() {
          return written;
        },
        async write(bytes) {
          pending.push(bytes);
          pendingBytes += bytes.byteLength;
          while (pendingBytes >= chunkBytes) {
            // Exactly one chunk: the piece that crosses the boundary is split.
            const parts: Uint8Array[] = [];
            let need = chunkBytes;
            while (need > 0) {
              const head = pending[0];
              if (head.byteLength <= need) {
                parts.push(head);
                pending.shift();
                need -= head.byteLength;
              } else {
                parts.push(head.subarray(0, need));
                pending[0] = head.subarray(need);
                need = 0;
              }
            }
            pendingBytes -= chunkBytes;
            await store(parts);
          }
        },
        async finish(sha256) {
          if (pendingBytes > 0) await store(pending);
          pending = [];
          pendingBytes = 0;
          await done({ chunks: index, ...(sha256 ? { sha256 } : {}) }, written);
          return { size: written, sha256, file: chunkedFile((await chunksOf(path)).map((r) => r.blob)) };
        },
        async keep() {
          pending = [];
          pendingBytes = 0;
        },
        async discard() {
          pending = [];
          pendingBytes = 0;
          await remove(path);
        },
      };
    },
  };
}

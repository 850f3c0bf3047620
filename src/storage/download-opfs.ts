/**
 * Downloads in the Origin Private File System (why it comes first: download-store.ts): one file per
 * download under `webtune-downloads/<sha256 of the model's cache id>/`, written in place through a
 * sync access handle, flushed at every chunk boundary. A file without its finished record in
 * IndexedDB is an interrupted download; its whole chunks are what a resume keeps.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { blobFile } from '../model/file-source';
import { type ChunkBackend, DownloadBusyError } from './download-store';
import { isQuotaExceeded, StorageFullError } from './errors';

const ROOT = 'webtune-downloads';

const named = (error: unknown, name: string) => (error as { name?: unknown } | null)?.name === name;

/** The backend, or null where OPFS or its sync access handles (dedicated workers only) are missing. */
export async function opfsDownloads(modelId: string, chunkBytes: number): Promise<ChunkBackend | null> {
  if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function') return null;
  if (typeof FileSystemFileHandle === 'undefined' || !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) return null;
  let folder: FileSystemDirectoryHandle;
  try {
    const top = await (await navigator.storage.getDirectory()).getDirectoryHandle(ROOT, { create: true });
    // Cache ids hold slashes and URLs: a digest is always a valid, short name.
    folder = await top.getDirectoryHandle(bytesToHex(sha256(utf8ToBytes(modelId))), { create: true });
  } catch {
    // Firefox's private windows, for one, refuse OPFS (SecurityError): IndexedDB chunks then.
    return null;
  }
  const fileName = (path: string) => encodeURIComponent(path);
  const existing = async (path: string): Promise<FileSystemFileHandle | null> => {
    try {
      return await folder.getFileHandle(fileName(path));
    } catch (error) {
      if (named(error, 'NotFoundError')) return null;
      throw error;
    }
  };
  const busy = (path: string, error: unknown) =>
    new DownloadBusyError(
      `${path} is being downloaded in another webtune tab right now; let that tab finish (or close it), then load the model again.`,
      { cause: error },
    );
  const remove = async (path: string) => {
    try {
      await folder.removeEntry(fileName(path));
    } catch (error) {
      if (named(error, 'NotFoundError')) return;
      if (named(error, 'NoModificationAllowedError')) throw busy(path, error);
      throw error;
    }
  };

  return {
    kind: 'opfs',
    async partial(path) {
      const handle = await existing(path);
      if (!handle) return null;
      const file = await handle.getFile();
      const whole = Math.floor(file.size / chunkBytes) * chunkBytes;
      return whole > 0 ? blobFile(file.slice(0, whole)) : null;
    },
    async read(record) {
      const handle = await existing(record.path);
      return handle ? blobFile(await handle.getFile()) : null;
    },
    remove,
    async writer(path, offset, done) {
      const handle = await folder.getFileHandle(fileName(path), { create: true });
      let access: FileSystemSyncAccessHandle;
      try {
        access = await handle.createSyncAccessHandle();
      } catch (error) {
        if (named(error, 'NoModificationAllowedError')) throw busy(path, error);
        throw error;
      }
      let written = offset;
      let open = true;
      const close = () => {
        if (open) access.close();
        open = false;
      };
      const guard = <T>(body: () => T): T => {
        try {
          return body();
        } catch (error) {
          close();
          if (isQuotaExceeded(error)) throw new StorageFullError(`the download of ${path}`, { cause: error });
          throw error;
        }
      };
      guard(() => access.truncate(offset));
      return {
        get written() {
          return written;
        },
        async write(bytes) {
          const before = Math.floor(written / chunkBytes);
          guard(() => {
            for (let at = 0; at < bytes.byteLength; ) {
              const n = access.write(bytes.subarray(at), { at: written });
              at += n;
              written += n;
            }
            if (Math.floor(written / chunkBytes) > before) access.flush();
          });
        },
        async finish(digest) {
          guard(() => access.flush());
          close();
          await done({ opfs: true, ...(digest ? { sha256: digest } : {}) }, written);
          return { size: written, sha256: digest, file: blobFile(await handle.getFile()) };
        },
        async keep() {
          if (!open) return;
          guard(() => {
            access.truncate(Math.floor(written / chunkBytes) * chunkBytes);
            access.flush();
          });
          close();
        },
        async discard() {
          close();
          await remove(path);
        },
      };
    },
  };
}

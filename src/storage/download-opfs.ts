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

/** A download's folder under ROOT: cache ids hold slashes and URLs, and a digest is always a valid, short name. */
export const opfsFolderName = (modelId: string): string => bytesToHex(sha256(utf8ToBytes(modelId)));

/** A download's file in its folder. */
export const opfsFileName = (path: string): string => encodeURIComponent(path);

const named = (error: unknown, name: string) => (error as { name?: unknown } | null)?.name === name;

/** The backend, or null where OPFS or its sync access handles (dedicated workers only) are missing. */
export async function opfsDownloads(modelId: string, chunkBytes: number): Promise<ChunkBackend | null> {
  if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function') return null;
  if (typeof FileSystemFileHandle === 'undefined' || !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) return null;
  let folder: FileSystemDirectoryHandle;
  try {
    const top = await (await navigator.storage.getDirectory()).getDirectoryHandle(ROOT, { create: true });
    folder = await top.getDirectoryHandle(opfsFolderName(modelId), { create: true });
  } catch {
    // Firefox's private windows, for one, refuse OPFS (SecurityError): IndexedDB chunks then.
    return null;
  }
  const fileName = opfsFileName;
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

/** The folder of downloads, or null where OPFS is missing or refused; never creates it. */
async function downloadsRoot(): Promise<FileSystemDirectoryHandle | null> {
  if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function') return null;
  try {
    return await (await navigator.storage.getDirectory()).getDirectoryHandle(ROOT);
  } catch {
    return null;
  }
}

/** Each download folder's files and their sizes on disk, by folder name (opfsFolderName); empty without OPFS. */
export async function opfsDownloadFolders(): Promise<Map<string, Map<string, number>>> {
  const out = new Map<string, Map<string, number>>();
  const root = await downloadsRoot();
  if (!root) return out;
  for await (const [name, entry] of root as unknown as AsyncIterable<[string, FileSystemHandle]>) {
    if (entry.kind !== 'directory') continue;
    const files = new Map<string, number>();
    for await (const [fileName, file] of entry as unknown as AsyncIterable<[string, FileSystemHandle]>) {
      if (file.kind === 'file') files.set(fileName, (await (file as FileSystemFileHandle).getFile()).size);
    }
    out.set(name, files);
  }
  return out;
}

/** Deletes a download folder with its files; a file another tab is writing makes it fail with DownloadBusyError. */
export async function removeOpfsFolder(folderName: string): Promise<void> {
  const root = await downloadsRoot();
  if (!root) return;
  try {
    await root.removeEntry(folderName, { recursive: true });
  } catch (error) {
    if (named(error, 'NotFoundError')) return;
    if (named(error, 'NoModificationAllowedError') || named(error, 'InvalidModificationError')) {
      throw new DownloadBusyError(
        'a file of this download is being written in another webtune tab right now; ' +
          'let that tab finish (or close it), then remove it again.',
        { cause: error },
      );
    }
    throw error;
  }
}

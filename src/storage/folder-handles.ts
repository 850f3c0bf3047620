/**
 * Local model folders picked with the File System Access API (`showDirectoryPicker`), kept so the
 * page can open one again after a reload without picking it again. A directory handle is
 * structured-cloneable, so it is stored as it is: one small record per folder in the modelFiles
 * store under the id below (no schema change). The handle grants nothing by itself: the page asks
 * for read permission again when it uses one (src/ui/views/remembered-folders.ts).
 */
import type { WebtuneDb } from './db';

export const FOLDERS = 'local-folder';

export interface RememberedFolder {
  name: string;
  handle: FileSystemDirectoryHandle;
  savedAt: number;
}

/** Keeps `handle` under its folder name, replacing a folder of the same name. */
export async function rememberFolder(db: WebtuneDb, handle: FileSystemDirectoryHandle, savedAt = Date.now()): Promise<void> {
  await db.modelFiles.put({
    modelId: FOLDERS,
    path: handle.name,
    revision: String(savedAt),
    size: 0,
    blob: new Blob([]),
    directory: handle,
  });
}

/** Newest first. */
export async function rememberedFolders(db: WebtuneDb): Promise<RememberedFolder[]> {
  return (await db.modelFiles.list(FOLDERS))
    .filter((r) => r.directory)
    .map((r) => ({ name: r.path, handle: r.directory!, savedAt: Number(r.revision) }))
    .sort((a, b) => b.savedAt - a.savedAt);
}

export async function forgetFolder(db: WebtuneDb, name: string): Promise<void> {
  await db.writeTx(
    ['modelFiles'],
    () => `forgetting the folder ${name}`,
    (tx) => tx.store.delete([FOLDERS, name]),
  );
}

/**
 * What downloads keep in this browser, and removing them: Hub models (cache id = the repo id),
 * model folder URLs (`url:<folder>`) and datasets from a URL or the Hub (`dataset:<source>`), whose
 * records sit in the modelFiles store and whose bytes sit there too or in OPFS (download-store.ts).
 * A download interrupted before any file finished leaves OPFS files and no record; those are listed
 * together as one entry, so their space can be freed as well. Folder handles kept by
 * folder-handles.ts are not downloads and are left out.
 */
import type { WebtuneDb } from './db';
import { opfsDownloadFolders, opfsFileName, opfsFolderName, removeOpfsFolder } from './download-opfs';
import { FOLDERS } from './folder-handles';

export type CachedDownloadKind = 'hub' | 'url' | 'dataset' | 'interrupted';

export interface CachedDownload {
  /** The cache id to remove it by; null for the interrupted downloads no record names. */
  id: string | null;
  kind: CachedDownloadKind;
  /** The repo id, folder URL or dataset source, as the user gave it. */
  label: string;
  /** Finished files. */
  fileCount: number;
  /** Bytes stored, partial files included. */
  bytes: number;
  /** The loaded model's files, which its merged exports read again: set by the engine, never removed. */
  loaded?: boolean;
}

function described(id: string): Pick<CachedDownload, 'kind' | 'label'> {
  if (id.startsWith('url:')) return { kind: 'url', label: id.slice('url:'.length) };
  if (id.startsWith('dataset:')) return { kind: 'dataset', label: id.slice('dataset:'.length) };
  return { kind: 'hub', label: id };
}

/** Every download kept, largest first. */
export async function listCachedDownloads(db: WebtuneDb): Promise<CachedDownload[]> {
  const models = (await db.modelFiles.listModels()).filter((m) => m.modelId !== FOLDERS);
  const folders = await opfsDownloadFolders();
  const out: CachedDownload[] = [];
  for (const model of models) {
    let bytes = model.size;
    const folder = folders.get(opfsFolderName(model.modelId));
    folders.delete(opfsFolderName(model.modelId));
    if (folder) {
      // Finished OPFS files are counted by their records; what else the folder holds is partial.
      const finished = new Set(
        (await db.modelFiles.list(model.modelId)).filter((r) => r.opfs && r.chunkOf === undefined).map((r) => opfsFileName(r.path)),
      );
      for (const [name, size] of folder) if (!finished.has(name)) bytes += size;
    }
    out.push({ id: model.modelId, ...described(model.modelId), fileCount: model.fileCount, bytes });
  }
  const orphans = [...folders.values()].reduce((sum, files) => sum + [...files.values()].reduce((a, b) => a + b, 0), 0);
  // Opening a download makes its folder before the Hub is asked anything, so an empty one is no download.
  if (orphans > 0) out.push({ id: null, kind: 'interrupted', label: 'Interrupted downloads', fileCount: 0, bytes: orphans });
  return out.sort((a, b) => b.bytes - a.bytes);
}

/**
 * Removes a download's records, then its OPFS files (a record without its bytes is only downloaded
 * again, never read); `null` removes the interrupted downloads that no record names.
 */
export async function removeCachedDownload(db: WebtuneDb, id: string | null): Promise<void> {
  if (id === FOLDERS) throw new Error('remembered folders are not downloads: forget them in the folder list');
  if (id !== null) {
    await db.modelFiles.deleteModel(id);
    await removeOpfsFolder(opfsFolderName(id));
    return;
  }
  const named = new Set((await db.modelFiles.listModels()).map((m) => opfsFolderName(m.modelId)));
  for (const name of (await opfsDownloadFolders()).keys()) if (!named.has(name)) await removeOpfsFolder(name);
}

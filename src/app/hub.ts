/**
 * Model downloads, from the Hugging Face Hub or from any folder URL (the site's embedded demo, a
 * static host), kept in this browser (src/storage/download-store.ts) so that a second visit reads
 * the model from disk instead of the network. Hub files are fetched from the public `resolve`
 * endpoint of the main branch and checked against the Hub's file list (sizes, sha256); every file
 * is streamed to storage in chunks (hub-download.ts) and read back by range, one tensor at a time.
 * An interrupted download keeps the finished files and the stored chunks of the one it was in,
 * and the next load continues from there.
 */
import { type FileSource, filesFromList, type RangedFile } from '../model/file-source';
import type { WebtuneDb } from '../storage/db';
import { connectRefusal } from '../site/csp';
import { type DownloadStoreOptions, openDownloadStore } from '../storage/download-store';
import type { HubProgress } from './api';
import { downloadFile, HubDownloadError, type RemoteFolder } from './hub-download';
import { type HubFileInfo, parseHubTree } from './hub-files';

export { HubDownloadError, HubIntegrityError } from './hub-download';

export const HUB = 'https://huggingface.co';
const REVISION = 'main';
export const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

export interface DownloadOptions {
  /** The network (tests pass a fake Hub). */
  fetcher?: typeof fetch;
  store?: DownloadStoreOptions;
}

/** A folder on a server; the Hub's also lists its files with sizes and hashes. */
interface ModelFolder extends RemoteFolder {
  list?(fetcher: typeof fetch): Promise<Map<string, HubFileInfo>>;
}

function hubFolder(repoId: string): ModelFolder {
  if (!REPO_ID.test(repoId)) {
    throw new HubDownloadError(`"${repoId}" is not a Hugging Face model id; it looks like "HuggingFaceTB/SmolLM2-135M-Instruct".`);
  }
  return {
    cacheId: repoId,
    label: `${repoId} (Hugging Face)`,
    revision: REVISION,
    url: (path) => `${HUB}/${repoId}/resolve/${REVISION}/${path}`,
    host: 'huggingface.co',
    missing: (path) => `${repoId} has no ${path} on the Hugging Face Hub; check the model id, which looks like "org/name".`,
    unauthorized:
      `${repoId} needs a Hugging Face login (gated or private model); webtune downloads public models only. ` +
      'Download the folder with your account and pick it as a local folder.',
    list: (fetcher) => listHubFiles(fetcher, repoId),
  };
}

async function listHubFiles(fetcher: typeof fetch, repoId: string): Promise<Map<string, HubFileInfo>> {
  let response: Response;
  try {
    response = await fetcher(`${HUB}/api/models/${repoId}/tree/${REVISION}`);
  } catch (error) {
    throw new HubDownloadError(
      `Could not reach huggingface.co for the file list of ${repoId} (${(error as Error).message}). Check the connection, ` +
        'or download the model folder yourself and pick it as a local folder.',
      { cause: error },
    );
  }
  // The Hub answers 401 for a repository that does not exist as well as for a private one.
  if (response.status === 404 || response.status === 401) {
    throw new HubDownloadError(
      `${repoId} is not a public model on the Hugging Face Hub (HTTP ${response.status} for its file list); check the model id, ` +
        'which looks like "org/name". webtune downloads public models only.',
    );
  }
  if (!response.ok) throw new HubDownloadError(`The Hub's file list of ${repoId} failed: HTTP ${response.status} ${response.statusText}.`);
  try {
    return parseHubTree(await response.json());
  } catch (error) {
    throw new HubDownloadError(`The Hub's file list of ${repoId} is not JSON (${(error as Error).message}); try again later.`);
  }
}

/** The folder a model URL names, with a final slash; http only on the page's own origin (a dev server). */
export function modelFolderUrl(url: string, pageOrigin: string): URL {
  let folder: URL;
  try {
    folder = new URL(url);
  } catch {
    throw new HubDownloadError(`"${url}" is not a URL; a model folder URL looks like "https://example.com/models/stories260K/".`);
  }
  if (folder.protocol !== 'https:' && folder.origin !== pageOrigin) {
    throw new HubDownloadError(`${url} is not an https URL; webtune downloads models over https only (or from this site).`);
  }
  const refusal = connectRefusal(folder, pageOrigin, 'model folder');
  if (refusal) throw new HubDownloadError(refusal);
  folder.hash = '';
  folder.search = '';
  if (!folder.pathname.endsWith('/')) folder.pathname += '/';
  return folder;
}

/** The model's name as the page shows it: the folder's last path segment ("stories260K"). */
export function modelFolderName(folder: URL): string {
  return decodeURIComponent(folder.pathname.split('/').filter(Boolean).at(-1) ?? folder.host);
}

/** The modelFiles key of a model folder URL's cached files. */
export const urlModelCacheId = (folder: URL) => `url:${folder.href}`;

function urlFolder(url: string, pageOrigin: string): ModelFolder {
  const folder = modelFolderUrl(url, pageOrigin);
  return {
    cacheId: urlModelCacheId(folder),
    label: folder.href,
    revision: 'url',
    url: (path) => new URL(path, folder).href,
    host: folder.host,
    missing: (path) => `${folder.href} has no ${path}; a model folder holds config.json, tokenizer.json and model.safetensors.`,
    unauthorized: `${folder.href} refused the download (login required); webtune downloads public files only.`,
  };
}

/** A FileSource over the model files of `repoId`, from the cache where present, downloaded otherwise. */
export async function hubFileSource(
  db: WebtuneDb,
  repoId: string,
  onProgress?: (progress: HubProgress) => void,
  options?: DownloadOptions,
): Promise<FileSource> {
  return remoteFileSource(db, hubFolder(repoId), onProgress, options);
}

/** The same over a folder URL (`https://host/models/stories260K/`), cached under the URL; no listing, so no hashes to check. */
export async function urlFileSource(
  db: WebtuneDb,
  url: string,
  pageOrigin: string,
  onProgress?: (progress: HubProgress) => void,
  options?: DownloadOptions,
): Promise<FileSource> {
  return remoteFileSource(db, urlFolder(url, pageOrigin), onProgress, options);
}

/** A shard name from the index becomes a URL path and a storage key: plain segments only, no "..". */
const SHARD_NAME = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[\w.-]+(?:\/[\w.-]+)*$/;

async function remoteFileSource(
  db: WebtuneDb,
  folder: ModelFolder,
  onProgress: (progress: HubProgress) => void = () => {},
  options: DownloadOptions = {},
): Promise<FileSource> {
  const fetcher = options.fetcher ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const store = await openDownloadStore(db, folder.cacheId, folder.revision, options.store);
  const cached = await store.finished();
  const files = new Map<string, RangedFile>();
  const planned = new Set(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
  // Files are fetched in the order below, so an optional file that a cache holding the weights
  // lacks was missing on the Hub: asking again would only fail when offline.
  const weightsCached = cached.has('model.safetensors') || cached.has('model.safetensors.index.json');
  // The Hub's list is asked for only when something must be downloaded, so a cached model loads offline.
  let listing: Promise<Map<string, HubFileInfo> | null> | null = null;
  const list = () => (listing ??= folder.list ? folder.list(fetcher) : Promise.resolve(null));
  const get = async (path: string, required: boolean): Promise<RangedFile | null> => {
    const report = (loaded: number, total: number | null, fromCache: boolean) =>
      onProgress({ file: path, loaded, total, fromCache, filesDone: files.size, filesTotal: planned.size });
    let file = cached.get(path)?.file ?? null;
    if (file) report(file.size, file.size, true);
    else if (required || !weightsCached) {
      const listed = await list();
      const info = listed?.get(path) ?? null;
      if (listed && !info) {
        if (required) throw new HubDownloadError(folder.missing(path));
      } else {
        const ctx = { store, folder, fetcher, onProgress: (loaded: number, total: number | null) => report(loaded, total, false) };
        file = await downloadFile(ctx, path, info, required);
      }
    }
    if (file) files.set(path, file);
    else planned.delete(path);
    return file;
  };

  await get('config.json', true);
  await get('tokenizer.json', true);
  await get('tokenizer_config.json', false);
  if (!(await get('model.safetensors', false))) {
    planned.add('model.safetensors.index.json');
    const index = await get('model.safetensors.index.json', false);
    if (!index) {
      throw new HubDownloadError(
        `${folder.label} has neither model.safetensors nor model.safetensors.index.json; webtune loads safetensors weights only.`,
      );
    }
    const text = new TextDecoder().decode(await index.read(0, index.size));
    let weightMap: Record<string, unknown> = {};
    try {
      weightMap = (JSON.parse(text) as { weight_map?: Record<string, unknown> }).weight_map ?? {};
    } catch (error) {
      throw new HubDownloadError(`model.safetensors.index.json of ${folder.label} is not valid JSON (${(error as Error).message}).`);
    }
    const shards = [...new Set(Object.values(weightMap))].sort();
    for (const shard of shards) {
      if (typeof shard !== 'string' || !SHARD_NAME.test(shard)) {
        throw new HubDownloadError(
          `model.safetensors.index.json of ${folder.label} names the shard ${JSON.stringify(shard)}, not a file name.`,
        );
      }
    }
    for (const shard of shards) planned.add(shard as string);
    for (const shard of shards) await get(shard as string, true);
  }
  return filesFromList(files, folder.label);
}

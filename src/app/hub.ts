/**
 * Model downloads, from the Hugging Face Hub or from any folder URL (the site's embedded demo, a
 * static host), cached in IndexedDB (the modelFiles store) so that a second visit reads the model
 * from disk instead of the network. Hub files are fetched from the public `resolve` endpoint of the
 * main branch; each file is stored only once it arrived whole, so an interrupted download keeps the
 * finished files and fetches the rest next time.
 */
import { type FileSource, filesFromList } from '../model/file-source';
import { ModelLoadError } from '../model/errors';
import type { WebtuneDb } from '../storage/db';
import { blockedSince, connectRefusal, redirectRefusal } from '../site/csp';
import type { HubProgress } from './api';

export const HUB = 'https://huggingface.co';
const REVISION = 'main';
export const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

export class HubDownloadError extends ModelLoadError {
  override name = 'HubDownloadError';
}

/** Where a model's files come from: its cache key, how messages name it, and each file's URL. */
interface RemoteFolder {
  cacheId: string;
  label: string;
  revision: string;
  url(path: string): string;
  /** The host named when a request fails. */
  host: string;
  missing(path: string): string;
  unauthorized: string;
}

function hubFolder(repoId: string): RemoteFolder {
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
  };
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

function urlFolder(url: string, pageOrigin: string): RemoteFolder {
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
export async function hubFileSource(db: WebtuneDb, repoId: string, onProgress?: (progress: HubProgress) => void): Promise<FileSource> {
  return remoteFileSource(db, hubFolder(repoId), onProgress);
}

/** The same over a folder URL (`https://host/models/stories260K/`), cached under the URL. */
export async function urlFileSource(
  db: WebtuneDb,
  url: string,
  pageOrigin: string,
  onProgress?: (progress: HubProgress) => void,
): Promise<FileSource> {
  return remoteFileSource(db, urlFolder(url, pageOrigin), onProgress);
}

async function remoteFileSource(
  db: WebtuneDb,
  folder: RemoteFolder,
  onProgress: (progress: HubProgress) => void = () => {},
): Promise<FileSource> {
  const files = new Map<string, Blob>();
  const planned = new Set(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
  const cached = new Map((await db.listModelFiles(folder.cacheId)).map((record) => [record.path, record.blob]));
  // Files are fetched in the order below, so an optional file that a cache holding the weights
  // lacks was missing on the Hub: asking again would only fail when offline.
  const weightsCached = cached.has('model.safetensors') || cached.has('model.safetensors.index.json');
  const get = async (path: string, required: boolean): Promise<Blob | null> => {
    const report = (loaded: number, total: number | null, fromCache: boolean) =>
      onProgress({ file: path, loaded, total, fromCache, filesDone: files.size, filesTotal: planned.size });
    let blob = cached.get(path) ?? null;
    if (blob) report(blob.size, blob.size, true);
    else if (required || !weightsCached) blob = await download(db, folder, path, required, (loaded, total) => report(loaded, total, false));
    if (blob) files.set(path, blob);
    else planned.delete(path);
    return blob;
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
    const weightMap = (JSON.parse(await index.text()) as { weight_map?: Record<string, string> }).weight_map ?? {};
    const shards = [...new Set(Object.values(weightMap))].sort();
    for (const shard of shards) planned.add(shard);
    for (const shard of shards) await get(shard, true);
  }
  return filesFromList(files, folder.label);
}

async function download(
  db: WebtuneDb,
  folder: RemoteFolder,
  path: string,
  required: boolean,
  onProgress: (loaded: number, total: number | null) => void,
): Promise<Blob | null> {
  const url = folder.url(path);
  let response: Response;
  const started = performance.now();
  try {
    response = await fetch(url);
  } catch (error) {
    // The URL itself passed connectRefusal (the Hub, or a host the policy allows), so a block is a redirect elsewhere.
    if (await blockedSince(started)) {
      throw new HubDownloadError(
        `${redirectRefusal(folder.host, path)} Download the model folder yourself and pick it as a local folder.`,
        { cause: error },
      );
    }
    throw new HubDownloadError(
      `Could not reach ${folder.host} for ${path} (${(error as Error).message}). Check the connection, or download the ` +
        'model folder yourself and pick it as a local folder.',
      { cause: error },
    );
  }
  if (response.status === 404) {
    if (!required) return null;
    throw new HubDownloadError(folder.missing(path));
  }
  if (response.status === 401 || response.status === 403) {
    throw new HubDownloadError(folder.unauthorized);
  }
  if (!response.ok || !response.body) {
    throw new HubDownloadError(`Downloading ${path} of ${folder.label} failed: HTTP ${response.status} ${response.statusText}.`);
  }
  // A broken connection makes read() reject, and openModel checks every safetensors header against
  // the file size, so a truncated file never loads. The length is only for progress: with a
  // compressed response it counts encoded bytes.
  const length = Number(response.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : null;
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let loaded = 0;
  let reported = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.byteLength;
    // Chunks are tens of kilobytes; a message per chunk would flood the page during a large download.
    if (performance.now() - reported > 100) {
      reported = performance.now();
      onProgress(loaded, total);
    }
  }
  onProgress(loaded, total);
  const blob = new Blob(chunks);
  await db.putModelFile({ modelId: folder.cacheId, path, revision: folder.revision, size: blob.size, blob });
  return blob;
}

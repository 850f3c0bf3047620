/**
 * Hugging Face Hub downloads, cached in IndexedDB (the modelFiles store) so that a second visit
 * reads the model from disk instead of the network. Files are fetched from the public `resolve`
 * endpoint of the main branch; each is stored only once it arrived whole, so an interrupted
 * download keeps the finished files and fetches the rest next time.
 */
import { type FileSource, filesFromList } from '../model/file-source';
import { ModelLoadError } from '../model/errors';
import type { WebtuneDb } from '../storage/db';
import type { HubProgress } from './api';

const HUB = 'https://huggingface.co';
const REVISION = 'main';
const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

export class HubDownloadError extends ModelLoadError {
  override name = 'HubDownloadError';
}

/** A FileSource over the model files of `repoId`, from the cache where present, downloaded otherwise. */
export async function hubFileSource(
  db: WebtuneDb,
  repoId: string,
  onProgress: (progress: HubProgress) => void = () => {},
): Promise<FileSource> {
  if (!REPO_ID.test(repoId)) {
    throw new HubDownloadError(`"${repoId}" is not a Hugging Face model id; it looks like "HuggingFaceTB/SmolLM2-135M-Instruct".`);
  }
  const files = new Map<string, Blob>();
  const planned = new Set(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']);
  const cached = new Map((await db.listModelFiles(repoId)).map((record) => [record.path, record.blob]));
  // Files are fetched in the order below, so an optional file that a cache holding the weights
  // lacks was missing on the Hub: asking again would only fail when offline.
  const weightsCached = cached.has('model.safetensors') || cached.has('model.safetensors.index.json');
  const get = async (path: string, required: boolean): Promise<Blob | null> => {
    const report = (loaded: number, total: number | null, fromCache: boolean) =>
      onProgress({ file: path, loaded, total, fromCache, filesDone: files.size, filesTotal: planned.size });
    let blob = cached.get(path) ?? null;
    if (blob) report(blob.size, blob.size, true);
    else if (required || !weightsCached) blob = await download(db, repoId, path, required, (loaded, total) => report(loaded, total, false));
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
        `${repoId} has neither model.safetensors nor model.safetensors.index.json on its main branch; ` +
          'webtune loads safetensors weights only.',
      );
    }
    const weightMap = (JSON.parse(await index.text()) as { weight_map?: Record<string, string> }).weight_map ?? {};
    const shards = [...new Set(Object.values(weightMap))].sort();
    for (const shard of shards) planned.add(shard);
    for (const shard of shards) await get(shard, true);
  }
  return filesFromList(files, `${repoId} (Hugging Face)`);
}

async function download(
  db: WebtuneDb,
  repoId: string,
  path: string,
  required: boolean,
  onProgress: (loaded: number, total: number | null) => void,
): Promise<Blob | null> {
  const url = `${HUB}/${repoId}/resolve/${REVISION}/${path}`;
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new HubDownloadError(
      `Could not reach huggingface.co for ${path} (${(error as Error).message}). Check the connection, or download the ` +
        'model folder yourself and pick it as a local folder.',
      { cause: error },
    );
  }
  if (response.status === 404) {
    if (!required) return null;
    throw new HubDownloadError(`${repoId} has no ${path} on the Hugging Face Hub; check the model id, which looks like "org/name".`);
  }
  if (response.status === 401 || response.status === 403) {
    throw new HubDownloadError(
      `${repoId} needs a Hugging Face login (gated or private model); webtune downloads public models only. ` +
        'Download the folder with your account and pick it as a local folder.',
    );
  }
  if (!response.ok || !response.body) {
    throw new HubDownloadError(`Downloading ${path} of ${repoId} failed: HTTP ${response.status} ${response.statusText}.`);
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
  await db.putModelFile({ modelId: repoId, path, revision: REVISION, size: blob.size, blob });
  return blob;
}

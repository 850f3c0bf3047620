/**
 * What a setup (a share link) will download, asked before anything is: each model and dataset
 * with its files and their sizes, or that it is in this browser's cache already. Sizes come from
 * the Hub's file listing (`/api/models/<id>/tree/main`), the dataset viewer's Parquet listing, or a
 * HEAD request (Content-Length); a size nobody tells is null. A source that cannot be reached is
 * listed with the reason instead of failing the whole plan.
 */
import type { WebtuneDb } from '../storage/db';
import { datasetCached } from './dataset-downloads';
import { type DatasetSource, datasetSourceString, parseDatasetSource, resolveDatasetFiles } from './dataset-sources';
import { HUB, modelFolderUrl, REPO_ID, urlModelCacheId } from './hub';
import { parseHubTree } from './hub-files';

export type ModelRef = { kind: 'hub'; id: string } | { kind: 'url'; url: string };

export interface DownloadPlanRequest {
  model: ModelRef | null;
  /** Dataset sources as strings (`url:…`, `hub:…`). */
  datasets: string[];
}

export interface PlannedDownload {
  what: 'model' | 'dataset';
  /** The Hub id, URL or dataset reference, as the link names it. */
  label: string;
  files: { name: string; size: number | null }[];
  /** Every file is in this browser already: nothing will be downloaded. */
  cached: boolean;
  /** Why the files could not be listed (the download itself will say more). */
  problem: string | null;
}

const MODEL_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];

export async function planDownloads(
  db: WebtuneDb,
  request: DownloadPlanRequest,
  fetcher: typeof fetch = fetch,
): Promise<PlannedDownload[]> {
  const origin = globalThis.location?.origin ?? '';
  const plan: PlannedDownload[] = [];
  if (request.model) plan.push(await planModel(db, request.model, origin, fetcher));
  for (const text of request.datasets) plan.push(await planDataset(db, text, origin, fetcher));
  return plan;
}

async function planModel(db: WebtuneDb, ref: ModelRef, origin: string, fetcher: typeof fetch): Promise<PlannedDownload> {
  const label = ref.kind === 'hub' ? ref.id : ref.url;
  const item: PlannedDownload = { what: 'model', label, files: [], cached: false, problem: null };
  try {
    if (ref.kind === 'hub' && !REPO_ID.test(ref.id)) throw new Error(`"${ref.id}" is not a Hugging Face model id`);
    const folder = ref.kind === 'url' ? modelFolderUrl(ref.url, origin) : null;
    const cached = new Set((await db.modelFiles.list(folder ? urlModelCacheId(folder) : label)).map((f) => f.path));
    item.cached = cached.has('config.json') && (cached.has('model.safetensors') || cached.has('model.safetensors.index.json'));
    if (item.cached) return item;
    if (folder) {
      for (const name of MODEL_FILES) {
        const size = await headSize(fetcher, new URL(name, folder).href);
        if (size !== 'missing') item.files.push({ name, size });
      }
      return item;
    }
    const response = await fetcher(`${HUB}/api/models/${label}/tree/main`);
    if (!response.ok) throw new Error(`the Hub answered HTTP ${response.status} for its file list`);
    const entries = [...parseHubTree(await response.json()).values()];
    const single = entries.some((e) => e.path === 'model.safetensors');
    const wanted = (path: string) =>
      MODEL_FILES.slice(0, 3).includes(path) ||
      (single ? path === 'model.safetensors' : path === 'model.safetensors.index.json' || /^[^/]+\.safetensors$/.test(path));
    item.files = entries.filter((e) => wanted(e.path)).map((e) => ({ name: e.path, size: e.size }));
  } catch (error) {
    item.problem = (error as Error).message;
  }
  return item;
}

async function planDataset(db: WebtuneDb, text: string, origin: string, fetcher: typeof fetch): Promise<PlannedDownload> {
  const item: PlannedDownload = { what: 'dataset', label: text.replace(/^(url|hub):/, ''), files: [], cached: false, problem: null };
  try {
    const source: DatasetSource = parseDatasetSource(text, origin);
    item.label = datasetSourceString(source).replace(/^(url|hub):/, '');
    item.cached = await datasetCached(db, source);
    if (item.cached) return item;
    for (const file of await resolveDatasetFiles(source, fetcher)) {
      const size = file.size ?? (await headSize(fetcher, file.url));
      item.files.push({ name: file.name, size: size === 'missing' ? null : size });
    }
  } catch (error) {
    item.problem = (error as Error).message;
  }
  return item;
}

/** A file's size from a HEAD request; 'missing' for a 404, null when the server does not say. */
async function headSize(fetcher: typeof fetch, url: string): Promise<number | null | 'missing'> {
  try {
    const response = await fetcher(url, { method: 'HEAD' });
    if (response.status === 404) return 'missing';
    const length = Number(response.headers.get('content-length'));
    return response.ok && Number.isFinite(length) && length > 0 ? length : null;
  } catch {
    return null;
  }
}

/**
 * Where a dataset can come from besides a file: an https URL, or the Hugging Face Hub, named as
 *
 *   owner/name                 the `train` split, as the Hub's dataset viewer converted it to Parquet
 *   owner/name:split           another split (its `default` subset, or the first one that has it)
 *   owner/name/path/file.jsonl a file of the dataset repository (main branch): JSONL, JSON or Parquet
 *
 * A source is written as one string, `url:<https URL>` or `hub:<reference>`, which is also how a
 * share link and a stored dataset name it. The files of a source are resolved here; downloads.ts
 * fetches and caches them.
 */
import { connectRefusal } from '../site/csp';
import { HUB } from './hub';

export type DatasetSource = { kind: 'url'; url: string } | { kind: 'hub'; repo: string; split: string | null; path: string | null };

/** A file to download, with its size when the listing or the server tells it. */
export interface RemoteFile {
  name: string;
  url: string;
  size: number | null;
}

export const DATASETS_SERVER = 'https://datasets-server.huggingface.co';

export class DatasetSourceError extends Error {
  override name = 'DatasetSourceError';
}

const NAME = '[A-Za-z0-9][\\w.-]*';
const HUB_REF = new RegExp(`^(${NAME}/${NAME})(?::([\\w.-]+)|/(.+))?$`);
const MAX_SOURCE_LENGTH = 2048;

/** What the user typed (or a link holds): an https URL, or a Hub reference; http only on the page's own origin. */
export function parseDatasetSource(input: string, pageOrigin: string): DatasetSource {
  const text = input.trim().replace(/^(url|hub):/, '');
  if (text.length === 0 || text.length > MAX_SOURCE_LENGTH) {
    throw new DatasetSourceError('Give a dataset URL (https://…/data.jsonl) or a Hugging Face dataset ("owner/name").');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new DatasetSourceError(`"${text}" is not a valid URL.`);
    }
    if (url.protocol !== 'https:' && url.origin !== pageOrigin) {
      throw new DatasetSourceError(`${url.href} is not an https URL; webtune downloads datasets over https only (or from this site).`);
    }
    const refusal = connectRefusal(url, pageOrigin, 'dataset');
    if (refusal) throw new DatasetSourceError(refusal);
    url.hash = '';
    return { kind: 'url', url: url.href };
  }
  const match = HUB_REF.exec(text);
  if (!match || match[3]?.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new DatasetSourceError(
      `"${text}" is neither an https URL nor a Hugging Face dataset; write "owner/name", "owner/name:split" or "owner/name/file.jsonl".`,
    );
  }
  return { kind: 'hub', repo: match[1], split: match[2] ?? null, path: match[3] ?? null };
}

/** The one-string form: `url:<URL>` or `hub:owner/name[:split|/path]`. */
export function datasetSourceString(source: DatasetSource): string {
  if (source.kind === 'url') return `url:${source.url}`;
  return `hub:${source.repo}${source.path ? `/${source.path}` : source.split ? `:${source.split}` : ''}`;
}

/** A short name for the dataset list: the file name, or the repository and split. */
export function datasetSourceName(source: DatasetSource): string {
  if (source.kind === 'url') return decodeURIComponent(new URL(source.url).pathname.split('/').filter(Boolean).at(-1) ?? source.url);
  return source.path ? `${source.repo}/${source.path}` : `${source.repo} ${source.split ?? 'train'}`;
}

interface ParquetListing {
  parquet_files?: { config?: unknown; split?: unknown; url?: unknown; filename?: unknown; size?: unknown }[];
}

/** The files a source stands for; a Hub split asks the dataset viewer which Parquet files hold it. */
export async function resolveDatasetFiles(source: DatasetSource, fetcher: typeof fetch = fetch): Promise<RemoteFile[]> {
  if (source.kind === 'url') return [{ name: datasetSourceName(source), url: source.url, size: null }];
  if (source.path) {
    const url = `${HUB}/datasets/${source.repo}/resolve/main/${source.path.split('/').map(encodeURIComponent).join('/')}`;
    return [{ name: source.path, url, size: null }];
  }
  const split = source.split ?? 'train';
  const listingUrl = `${DATASETS_SERVER}/parquet?dataset=${encodeURIComponent(source.repo)}`;
  const response = await reach(fetcher, listingUrl, `the Parquet files of ${source.repo}`);
  if (response.status === 404 || response.status === 401 || response.status === 403) {
    throw new DatasetSourceError(
      `The Hugging Face Hub has no public dataset ${source.repo} with a converted Parquet version (HTTP ${response.status}); ` +
        'check the name, or name one of its files as "owner/name/file.jsonl".',
    );
  }
  if (!response.ok) throw new DatasetSourceError(`Listing the Parquet files of ${source.repo} failed: HTTP ${response.status}.`);
  const listing = (await response.json()) as ParquetListing;
  const files = (listing.parquet_files ?? []).filter(
    (f): f is { config: string; split: string; url: string; filename: string; size: unknown } =>
      typeof f.config === 'string' && typeof f.split === 'string' && typeof f.url === 'string' && typeof f.filename === 'string',
  );
  const ofSplit = files.filter((f) => f.split === split);
  if (ofSplit.length === 0) {
    const splits = [...new Set(files.map((f) => f.split))];
    const others = splits.length ? `; it has ${splits.join(', ')} (write "${source.repo}:${splits[0]}")` : '';
    throw new DatasetSourceError(`${source.repo} has no split "${split}"${others}.`);
  }
  const config = ofSplit.some((f) => f.config === 'default') ? 'default' : ofSplit[0].config;
  return ofSplit
    .filter((f) => f.config === config)
    .map((f) => ({ name: f.filename, url: f.url, size: typeof f.size === 'number' ? f.size : null }));
}

/** fetch, with a failure to connect (offline, or a server that forbids other sites: CORS) turned into a clear error. */
export async function reach(fetcher: typeof fetch, url: string, what: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetcher(url, init);
  } catch (error) {
    throw new DatasetSourceError(
      `Could not reach ${new URL(url).host} for ${what} (${(error as Error).message}). Check the connection; the server must also ` +
        'allow downloads from other sites (CORS), as the Hugging Face Hub and most static hosts do.',
      { cause: error },
    );
  }
}

/**
 * Downloads of datasets named by a URL or a Hub reference (dataset-sources.ts), cached in IndexedDB
 * like Hub models (the modelFiles store, under `dataset:<source>`): every file is stored once it
 * arrived whole and a manifest last, so a source is read from the cache only when all its files
 * are there, and a second import of the same source makes no request.
 */
import type { WebtuneDb } from '../storage/db';
import type { HubProgress } from './api';
import { type DatasetSource, DatasetSourceError, datasetSourceString, reach, resolveDatasetFiles } from './dataset-sources';

/** Rows are kept in IndexedDB and parsed in memory; larger datasets belong in a training script. */
export const MAX_DATASET_BYTES = 512 * 1024 * 1024;
const MANIFEST = 'manifest.json';

export interface DownloadedFile {
  name: string;
  bytes: Uint8Array;
}

export function datasetCacheId(source: DatasetSource): string {
  return `dataset:${datasetSourceString(source)}`;
}

/** True when every file of the source is in the cache. */
export async function datasetCached(db: WebtuneDb, source: DatasetSource): Promise<boolean> {
  return (await db.modelFiles.get(datasetCacheId(source), MANIFEST)) !== null;
}

export async function downloadDataset(
  db: WebtuneDb,
  source: DatasetSource,
  onProgress: (progress: HubProgress) => void = () => {},
  fetcher: typeof fetch = fetch,
): Promise<DownloadedFile[]> {
  const cacheId = datasetCacheId(source);
  const manifest = await db.modelFiles.get(cacheId, MANIFEST);
  if (manifest) {
    const names = JSON.parse(await manifest.blob.text()) as string[];
    const out: DownloadedFile[] = [];
    for (const [i, name] of names.entries()) {
      const record = await db.modelFiles.get(cacheId, `file:${name}`);
      if (!record) break;
      onProgress({ file: name, loaded: record.size, total: record.size, fromCache: true, filesDone: i, filesTotal: names.length });
      out.push({ name, bytes: new Uint8Array(await record.blob.arrayBuffer()) });
    }
    if (out.length === names.length) return out;
  }
  const files = await resolveDatasetFiles(source, fetcher);
  const listed = files.reduce((sum, f) => sum + (f.size ?? 0), 0);
  if (listed > MAX_DATASET_BYTES) throw tooLarge(listed);
  const out: DownloadedFile[] = [];
  let total = 0;
  for (const [i, file] of files.entries()) {
    const response = await reach(fetcher, file.url, file.name);
    if (response.status === 404) throw new DatasetSourceError(`${file.url} does not exist (HTTP 404); check the address.`);
    if (response.status === 401 || response.status === 403) {
      throw new DatasetSourceError(`${file.url} needs a login (HTTP ${response.status}); webtune downloads public files only.`);
    }
    if (!response.ok) throw new DatasetSourceError(`Downloading ${file.url} failed: HTTP ${response.status} ${response.statusText}.`);
    const length = Number(response.headers.get('content-length'));
    if (Number.isFinite(length) && total + length > MAX_DATASET_BYTES) throw tooLarge(total + length);
    const bytes = new Uint8Array(await response.arrayBuffer());
    total += bytes.byteLength;
    if (total > MAX_DATASET_BYTES) throw tooLarge(total);
    onProgress({
      file: file.name,
      loaded: bytes.byteLength,
      total: bytes.byteLength,
      fromCache: false,
      filesDone: i,
      filesTotal: files.length,
    });
    await db.modelFiles.put({
      modelId: cacheId,
      path: `file:${file.name}`,
      revision: 'dataset',
      size: bytes.byteLength,
      blob: new Blob([bytes]),
    });
    out.push({ name: file.name, bytes });
  }
  const names = new Blob([JSON.stringify(files.map((f) => f.name))]);
  await db.modelFiles.put({ modelId: cacheId, path: MANIFEST, revision: 'dataset', size: names.size, blob: names });
  return out;
}

function tooLarge(bytes: number): DatasetSourceError {
  const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
  return new DatasetSourceError(
    `This dataset is ${mib(bytes)}, more than the ${mib(MAX_DATASET_BYTES)} webtune keeps in the browser; ` +
      'pick one file or a smaller split.',
  );
}

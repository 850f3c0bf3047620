import 'fake-indexeddb/auto';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { downloadDataset } from '../../src/app/dataset-downloads';
import { DatasetSourceError, datasetSourceString, parseDatasetSource } from '../../src/app/dataset-sources';
import { openWebtuneDb } from '../../src/storage/db';
import { freshDbName } from '../storage/fixtures';

/** A server answering from a table of URLs, counting what was asked: the engine's fetch without a network. */
function server(files: Record<string, Uint8Array | object>) {
  const asked: string[] = [];
  const fetcher = (async (input: RequestInfo | URL) => {
    const url = String(input);
    asked.push(url);
    const body = files[url];
    if (body === undefined) return new Response('Not found', { status: 404 });
    return new Response(body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body), { status: 200 });
  }) as typeof fetch;
  return { asked, fetcher };
}

const shard = (texts: string[]) => new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: texts, type: 'STRING' }] }));

describe('dataset sources', () => {
  it('reads URLs and the three Hub reference forms, and refuses anything else with what to write', () => {
    const origin = 'http://localhost:4173';
    expect(parseDatasetSource('https://example.org/d/zog.jsonl#x', origin)).toEqual({
      kind: 'url',
      url: 'https://example.org/d/zog.jsonl',
    });
    expect(parseDatasetSource('http://localhost:4173/demo/zog.jsonl', origin).kind).toBe('url');
    expect(parseDatasetSource('owner/name', origin)).toEqual({ kind: 'hub', repo: 'owner/name', split: null, path: null });
    expect(parseDatasetSource('hub:owner/name:test', origin)).toEqual({ kind: 'hub', repo: 'owner/name', split: 'test', path: null });
    expect(datasetSourceString(parseDatasetSource('owner/name/data/train.jsonl', origin))).toBe('hub:owner/name/data/train.jsonl');
    expect(() => parseDatasetSource('http://example.org/zog.jsonl', origin)).toThrow(/not an https URL/);
    expect(() => parseDatasetSource('javascript:alert(1)', origin)).toThrow(DatasetSourceError);
    expect(() => parseDatasetSource('owner/name/../secret', origin)).toThrow(/neither an https URL nor a Hugging Face dataset/);
  });
});

describe('dataset downloads', () => {
  it('fetches every Parquet file of a Hub split once, then reads them from IndexedDB without a request', async () => {
    const db = await openWebtuneDb(freshDbName());
    const base = 'https://huggingface.co/datasets/owner/zog/resolve/refs%2Fconvert%2Fparquet/default/train';
    const { asked, fetcher } = server({
      'https://datasets-server.huggingface.co/parquet?dataset=owner%2Fzog': {
        parquet_files: [
          { dataset: 'owner/zog', config: 'default', split: 'train', url: `${base}/0000.parquet`, filename: '0000.parquet', size: 10 },
          { dataset: 'owner/zog', config: 'default', split: 'train', url: `${base}/0001.parquet`, filename: '0001.parquet', size: 10 },
          { dataset: 'owner/zog', config: 'default', split: 'test', url: `${base}/x.parquet`, filename: 'x.parquet', size: 10 },
        ],
      },
      [`${base}/0000.parquet`]: shard(['a', 'b']),
      [`${base}/0001.parquet`]: shard(['c']),
    });
    const source = parseDatasetSource('owner/zog', '');
    const first = await downloadDataset(db, source, undefined, fetcher);
    expect(first.map((f) => f.name)).toEqual(['0000.parquet', '0001.parquet']);
    expect(asked).toHaveLength(3);
    const progress: boolean[] = [];
    const second = await downloadDataset(db, source, (p) => progress.push(p.fromCache), fetcher);
    expect(asked).toHaveLength(3);
    expect(progress).toEqual([true, true]);
    expect(second.map((f) => [...f.bytes])).toEqual(first.map((f) => [...f.bytes]));
  });

  it('names the splits a dataset has when the asked one is missing, and a missing file by its URL', async () => {
    const db = await openWebtuneDb(freshDbName());
    const { fetcher } = server({
      'https://datasets-server.huggingface.co/parquet?dataset=owner%2Fzog': {
        parquet_files: [{ config: 'default', split: 'test', url: 'https://x/y.parquet', filename: 'y.parquet', size: 1 }],
      },
    });
    await expect(downloadDataset(db, parseDatasetSource('owner/zog', ''), undefined, fetcher)).rejects.toThrow(
      'owner/zog has no split "train"; it has test (write "owner/zog:test").',
    );
    await expect(downloadDataset(db, parseDatasetSource('https://example.org/none.jsonl', ''), undefined, fetcher)).rejects.toThrow(
      'https://example.org/none.jsonl does not exist (HTTP 404); check the address.',
    );
  });

  it('refuses a split larger than the browser keeps, before downloading it', async () => {
    const db = await openWebtuneDb(freshDbName());
    const { asked, fetcher } = server({
      'https://datasets-server.huggingface.co/parquet?dataset=owner%2Fbig': {
        parquet_files: [{ config: 'default', split: 'train', url: 'https://x/big.parquet', filename: 'big.parquet', size: 2 ** 40 }],
      },
    });
    await expect(downloadDataset(db, parseDatasetSource('owner/big', ''), undefined, fetcher)).rejects.toThrow(/more than the 512 MiB/);
    expect(asked).toHaveLength(1);
  });
});

import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { planDownloads } from '../../src/app/download-plan';
import { openWebtuneDb } from '../../src/storage/db';
import { freshDbName } from '../storage/fixtures';

/** Answers GET with JSON bodies and HEAD with a Content-Length, from a table; records every request. */
function server(table: Record<string, { json?: unknown; length?: number }>) {
  const asked: string[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    asked.push(`${init?.method ?? 'GET'} ${url}`);
    const entry = table[url];
    if (!entry) return new Response(null, { status: 404 });
    if (entry.json !== undefined) return Response.json(entry.json);
    return new Response(null, { status: 200, headers: { 'content-length': String(entry.length) } });
  }) as typeof fetch;
  return { asked, fetcher };
}

describe('planDownloads', () => {
  it('lists a sharded Hub model from its file list and a dataset URL from a HEAD request, downloading nothing', async () => {
    const db = await openWebtuneDb(freshDbName());
    const { asked, fetcher } = server({
      'https://huggingface.co/api/models/org/big/tree/main': {
        json: [
          { type: 'file', path: 'config.json', size: 700 },
          { type: 'file', path: 'tokenizer.json', size: 2_000_000 },
          { type: 'file', path: 'model.safetensors.index.json', size: 30_000 },
          { type: 'file', path: 'model-00001-of-00002.safetensors', size: 134, lfs: { size: 4_000_000_000 } },
          { type: 'file', path: 'model-00002-of-00002.safetensors', size: 134, lfs: { size: 1_000_000_000 } },
          { type: 'file', path: 'README.md', size: 5000 },
          { type: 'directory', path: 'onnx', size: 0 },
        ],
      },
      'https://data.example/zog.jsonl': { length: 10005 },
    });
    const plan = await planDownloads(
      db,
      { model: { kind: 'hub', id: 'org/big' }, datasets: ['url:https://data.example/zog.jsonl'] },
      fetcher,
    );
    expect(plan).toEqual([
      {
        what: 'model',
        label: 'org/big',
        cached: false,
        problem: null,
        files: [
          { name: 'config.json', size: 700 },
          { name: 'tokenizer.json', size: 2_000_000 },
          { name: 'model.safetensors.index.json', size: 30_000 },
          { name: 'model-00001-of-00002.safetensors', size: 4_000_000_000 },
          { name: 'model-00002-of-00002.safetensors', size: 1_000_000_000 },
        ],
      },
      {
        what: 'dataset',
        label: 'https://data.example/zog.jsonl',
        cached: false,
        problem: null,
        files: [{ name: 'zog.jsonl', size: 10005 }],
      },
    ]);
    expect(asked).toEqual(['GET https://huggingface.co/api/models/org/big/tree/main', 'HEAD https://data.example/zog.jsonl']);
  });

  it('says a model folder URL is cached without asking, and lists an unreachable source with its problem', async () => {
    const db = await openWebtuneDb(freshDbName());
    const folder = 'https://site.example/demo/stories260K/';
    for (const path of ['config.json', 'model.safetensors']) {
      await db.modelFiles.put({ modelId: `url:${folder}`, path, revision: 'url', size: 1, blob: new Blob(['x']) });
    }
    const { asked, fetcher } = server({});
    const plan = await planDownloads(db, { model: { kind: 'url', url: folder }, datasets: ['hub:org/none'] }, fetcher);
    expect(plan[0]).toMatchObject({ what: 'model', cached: true, files: [] });
    expect(plan[1].problem).toMatch(/no public dataset org\/none/);
    expect(asked).toEqual(['GET https://datasets-server.huggingface.co/parquet?dataset=org%2Fnone']);
  });
});

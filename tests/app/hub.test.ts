import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { type DownloadOptions, HubDownloadError, HubIntegrityError, hubFileSource } from '../../src/app/hub';
import { openModel } from '../../src/model/weights';
import { openWebtuneDb } from '../../src/storage/db';
import { hubTree, type RepoFiles, sha256Hex, shardedStories } from '../helpers/hub-repo';
import { freshDbName } from '../storage/fixtures';

const REPO = 'org/stories';
const CHUNK = 64 * 1024;

interface Asked {
  path: string;
  range: string | null;
}

/**
 * The Hub without a network: the tree listing and `resolve` answers for one repository, Range
 * requests answered with 206 (unless `ignoreRange`), and the first download of a file in `cutAfter`
 * failing mid-stream after that many bytes, as a dropped connection does.
 */
function fakeHub(files: RepoFiles, opts: { cutAfter?: Map<string, number>; ignoreRange?: boolean; tree?: object[] } = {}) {
  const asked: Asked[] = [];
  const tree = opts.tree ?? hubTree(files);
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    if (url === `https://huggingface.co/api/models/${REPO}/tree/main`) {
      asked.push({ path: 'tree', range: null });
      return Response.json(tree);
    }
    const file = new RegExp(`^https://huggingface\\.co/${REPO}/resolve/main/(.+)$`).exec(url)?.[1];
    const range = new Headers(init?.headers).get('range');
    asked.push({ path: file ?? url, range });
    const bytes = file ? files.get(file) : undefined;
    if (!bytes) return new Response('Entry not found', { status: 404 });
    const start = range && !opts.ignoreRange ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
    const body = bytes.subarray(start);
    const cut = opts.cutAfter?.get(file!);
    opts.cutAfter?.delete(file!);
    // Small pieces, as a network delivers them, so chunk boundaries fall inside pieces.
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (cut !== undefined && at >= cut) return controller.error(new TypeError('network error'));
        if (at >= body.length) return controller.close();
        const end = Math.min(body.length, at + 10_000, cut ?? Infinity);
        controller.enqueue(body.slice(at, end));
        at = end;
      },
    });
    const headers: Record<string, string> = { 'content-length': String(body.length) };
    if (start > 0) headers['content-range'] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
    return new Response(stream, { status: start > 0 ? 206 : 200, headers });
  }) as typeof fetch;
  return { asked, fetcher };
}

async function setup(files: RepoFiles, hub: ReturnType<typeof fakeHub>) {
  const db = await openWebtuneDb(freshDbName());
  const options: DownloadOptions = { fetcher: hub.fetcher, store: { chunkBytes: CHUNK } };
  return { db, load: () => hubFileSource(db, REPO, undefined, options), files };
}

const SHARD_2 = 'model-00002-of-00003.safetensors';

describe('Hub downloads', () => {
  it('streams every file into stored chunks and reads tensors back by range across chunk boundaries', async () => {
    const files = shardedStories(3);
    const hub = fakeHub(files);
    const { db, load } = await setup(files, hub);
    const source = await load();
    for (const [path, bytes] of files) {
      expect(sha256Hex(await source.read(path))).toBe(sha256Hex(bytes));
      // A range that starts in one chunk and ends in the next.
      if (bytes.length > CHUNK + 10) expect(await source.read(path, CHUNK - 5, CHUNK + 7)).toEqual(bytes.subarray(CHUNK - 5, CHUNK + 7));
    }
    const { weights } = await openModel(source);
    expect((await weights.tensor('model.norm.weight', [64])).length).toBe(64);
    const records = await db.modelFiles.list(REPO);
    const chunks = records.filter((r) => r.chunkOf === SHARD_2);
    expect(chunks.length).toBe(Math.ceil(files.get(SHARD_2)!.length / CHUNK));
    expect(chunks.slice(0, -1).every((c) => c.size === CHUNK)).toBe(true);
    expect(records.find((r) => r.path === SHARD_2)).toMatchObject({ chunks: chunks.length, sha256: sha256Hex(files.get(SHARD_2)!) });
    expect(await db.modelFiles.listModels()).toEqual([
      { modelId: REPO, revision: 'main', fileCount: files.size, size: [...files.values()].reduce((s, b) => s + b.length, 0) },
    ]);

    // A second load reads the cache only: not even the file list is asked for.
    hub.asked.length = 0;
    await load();
    expect(hub.asked).toEqual([]);
  });

  it('resumes an interrupted shard with a Range request from its last stored chunk, fetching no finished file again', async () => {
    const files = shardedStories(3);
    const cut = 3 * CHUNK + 1234;
    const hub = fakeHub(files, { cutAfter: new Map([[SHARD_2, cut]]) });
    const { load } = await setup(files, hub);
    await expect(load()).rejects.toThrow(HubDownloadError);
    await expect(load()).resolves.toBeDefined();
    const perFile = (path: string) => hub.asked.filter((a) => a.path === path);
    for (const path of ['config.json', 'tokenizer.json', 'model-00001-of-00003.safetensors']) expect(perFile(path)).toHaveLength(1);
    expect(perFile(SHARD_2)).toEqual([
      { path: SHARD_2, range: null },
      { path: SHARD_2, range: `bytes=${3 * CHUNK}-` },
    ]);
    expect(perFile('model-00003-of-00003.safetensors')).toHaveLength(1);
    const source = await load();
    expect(sha256Hex(await source.read(SHARD_2))).toBe(sha256Hex(files.get(SHARD_2)!));
  });

  it('says where an interrupted download stopped and that loading again continues', async () => {
    const files = shardedStories(3);
    const hub = fakeHub(files, { cutAfter: new Map([[SHARD_2, 2 * CHUNK + 5]]) });
    const { load } = await setup(files, hub);
    await expect(load()).rejects.toThrow(
      new RegExp(
        `The download of ${SHARD_2} from huggingface\\.co stopped after 131,077 of [\\d,]+ bytes \\(network error\\)\\. ` +
          'What arrived is kept',
      ),
    );
  });

  it('downloads the whole file again when the server ignores Range, and the result is still exact', async () => {
    const files = shardedStories(3);
    const hub = fakeHub(files, { cutAfter: new Map([[SHARD_2, 2 * CHUNK + 99]]), ignoreRange: true });
    const { load } = await setup(files, hub);
    await expect(load()).rejects.toThrow(HubDownloadError);
    const source = await load();
    expect(hub.asked.filter((a) => a.path === SHARD_2).map((a) => a.range)).toEqual([null, `bytes=${2 * CHUNK}-`]);
    expect(sha256Hex(await source.read(SHARD_2))).toBe(sha256Hex(files.get(SHARD_2)!));
  });

  it('refuses a file whose sha256 differs from the Hub list, naming the file and both hashes, and keeps nothing of it', async () => {
    const files = shardedStories(3);
    const tree = hubTree(files);
    const listed = sha256Hex(files.get(SHARD_2)!);
    const corrupt = new Map(files);
    const bad = files.get(SHARD_2)!.slice();
    bad[bad.length - 3] ^= 0xff;
    corrupt.set(SHARD_2, bad);
    const hub = fakeHub(corrupt, { tree });
    const { db, load } = await setup(corrupt, hub);
    const error = await load().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubIntegrityError);
    expect(error).toMatchObject({ file: SHARD_2, what: 'sha256', expected: listed, actual: sha256Hex(bad) });
    expect((error as Error).message).toContain(`${SHARD_2} of ${REPO} (Hugging Face) does not match the Hub's file list`);
    expect((error as Error).message).toContain(listed);
    expect((error as Error).message).toContain(sha256Hex(bad));
    const paths = (await db.modelFiles.list(REPO)).map((r) => r.chunkOf ?? r.path);
    expect(paths).not.toContain(SHARD_2);
    expect(paths).toContain('model-00001-of-00003.safetensors');
    // Nothing was kept, so the next try starts from byte 0.
    hub.asked.length = 0;
    await expect(load()).rejects.toThrow(HubIntegrityError);
    expect(hub.asked.filter((a) => a.path === SHARD_2)).toEqual([{ path: SHARD_2, range: null }]);
  });

  it('checks small files by their git blob id and every file by its listed size', async () => {
    const files = shardedStories(2);
    const config = new TextEncoder().encode(
      new TextDecoder().decode(files.get('config.json')).replace('"hidden_size": 64', '"hidden_size": 65'),
    );
    const changed = new Map(files).set('config.json', config);
    const { load } = await setup(changed, fakeHub(changed, { tree: hubTree(files) }));
    await expect(load()).rejects.toThrow(
      /config\.json of org\/stories \(Hugging Face\) does not match the Hub's file list: its git blob id is/,
    );

    const longer = new Map(files).set('tokenizer.json', new Uint8Array([...files.get('tokenizer.json')!, 32]));
    const second = await setup(longer, fakeHub(longer, { tree: hubTree(files) }));
    await expect(second.load()).rejects.toThrow(/tokenizer\.json .* its size is 10615 bytes but the Hub lists 10614 bytes/);
  });

  it('refuses an id the Hub does not list, and a file the list lacks, without downloading anything', async () => {
    const files = shardedStories(2);
    const hub = fakeHub(files, { tree: hubTree(files).filter((e) => (e as { path: string }).path !== 'tokenizer.json') });
    const { load } = await setup(files, hub);
    await expect(load()).rejects.toThrow('org/stories has no tokenizer.json on the Hugging Face Hub');
    expect(hub.asked.map((a) => a.path)).toEqual(['tree', 'config.json']);

    const db = await openWebtuneDb(freshDbName());
    const missing = (async () => new Response('Repository not found', { status: 401 })) as typeof fetch;
    await expect(hubFileSource(db, 'org/nothing', undefined, { fetcher: missing })).rejects.toThrow(
      'org/nothing is not a public model on the Hugging Face Hub (HTTP 401 for its file list)',
    );
  });
});

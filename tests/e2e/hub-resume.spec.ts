import { createHash } from 'node:crypto';
import { expect, type Page, test } from '@playwright/test';
import { hubTree, type RepoFiles, sha256Hex, shardedStories, wideStories } from '../helpers/hub-repo';
import { collectErrors, openApp } from './helpers';

const CHUNK = 16 * 2 ** 20;
const WIDE = 'webtune-test/wide-stories';
const BAD = 'webtune-test/bad-hash';
const SHARD_2 = 'model-00002-of-00002.safetensors';

/** What the browser keeps of a model: its modelFiles records and its files in the Origin Private File System. */
async function stored(page: Page, modelId: string) {
  const folder = createHash('sha256').update(modelId).digest('hex');
  return page.evaluate(
    async ({ modelId, folder }) => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const open = indexedDB.open('webtune');
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const records = await new Promise<{ path: string; opfs?: boolean; chunkOf?: string }[]>((resolve, reject) => {
        const request = db
          .transaction('modelFiles')
          .objectStore('modelFiles')
          .getAll(IDBKeyRange.bound([modelId], [modelId, []]));
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      db.close();
      const files: Record<string, number> = {};
      try {
        const root = await (await navigator.storage.getDirectory()).getDirectoryHandle('webtune-downloads');
        const dir = await root.getDirectoryHandle(folder);
        for await (const [name, handle] of dir as unknown as AsyncIterable<[string, FileSystemFileHandle]>) {
          files[decodeURIComponent(name)] = (await handle.getFile()).size;
        }
      } catch {
        // No folder: nothing stored.
      }
      return { records: records.map((r) => ({ path: r.path, opfs: r.opfs === true, chunkOf: r.chunkOf ?? null })), files };
    },
    { modelId, folder },
  );
}

async function load(page: Page, repo: string): Promise<void> {
  await page.getByTestId('hub-id').fill(repo);
  await page.getByTestId('hub-load').click();
}

/**
 * A multi-file Hub model, routed: the file list with sizes and sha256, an index and two shards of a
 * 55 MB model. The first answer for the second shard ends after 20 MB (a dropped connection); after
 * a reload the page asks for the rest of that shard only, with a Range request from its last stored
 * 16 MiB chunk, and nothing else again. A second model whose shard differs from its listed sha256
 * is refused, naming the file and both hashes, and nothing of that shard stays.
 */
test('a sharded Hub model resumes after an interrupted download, and a file that fails its sha256 is refused', async ({
  page,
  context,
}) => {
  test.setTimeout(300_000);
  const errors = collectErrors(page);
  const wide = wideStories(512, 4, 2);
  const small = shardedStories(2);
  const corrupt = new Map(small);
  const bad = small.get(SHARD_2)!.slice();
  bad[bad.length - 100] ^= 0x5a;
  corrupt.set(SHARD_2, bad);
  const repos: Record<string, { served: RepoFiles; listed: RepoFiles }> = {
    [WIDE]: { served: wide, listed: wide },
    [BAD]: { served: corrupt, listed: small },
  };
  const asked: { repo: string; file: string; range: string | null }[] = [];
  let cutNext = true;
  await context.route('https://huggingface.co/**', async (route) => {
    const url = route.request().url();
    const cors = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Content-Range' };
    const listedRepo = /^https:\/\/huggingface\.co\/api\/models\/([^/]+\/[^/]+)\/tree\/main$/.exec(url)?.[1];
    if (listedRepo && repos[listedRepo]) {
      asked.push({ repo: listedRepo, file: 'tree', range: null });
      return route.fulfill({ status: 200, json: hubTree(repos[listedRepo].listed), headers: cors });
    }
    const [, repo, file] = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(url) ?? [];
    const range = (await route.request().allHeaders()).range ?? null;
    asked.push({ repo, file, range });
    const bytes = repos[repo]?.served.get(file);
    if (!bytes) return route.fulfill({ status: 404, body: 'Entry not found', headers: cors });
    if (repo === WIDE && file === SHARD_2 && cutNext) {
      cutNext = false;
      // The declared length is the whole file, the body stops at 20 MB: the page sees the stream end early.
      const headers = { ...cors, 'content-length': String(bytes.length) };
      return route.fulfill({ status: 200, body: Buffer.from(bytes.subarray(0, 20_000_000)), headers });
    }
    const start = range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
    const headers = start ? { ...cors, 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : cors;
    return route.fulfill({ status: start ? 206 : 200, body: Buffer.from(bytes.subarray(start)), headers });
  });

  await openApp(page);
  await load(page, WIDE);
  await expect(page.getByTestId('model-error')).toContainText(
    `The download of ${SHARD_2} from huggingface.co stopped after 20,000,000 of ${wide.get(SHARD_2)!.length.toLocaleString('en-US')} bytes`,
  );
  // The first shard is finished in OPFS; of the second, its first whole 16 MiB chunk is kept and no record says it is finished.
  let kept = await stored(page, WIDE);
  expect(kept.files[SHARD_2]).toBe(CHUNK);
  expect(kept.files['model-00001-of-00002.safetensors']).toBe(wide.get('model-00001-of-00002.safetensors')!.length);
  expect(kept.records.find((r) => r.path === 'model-00001-of-00002.safetensors')?.opfs).toBe(true);
  expect(kept.records.map((r) => r.path)).not.toContain(SHARD_2);

  await page.reload();
  await openApp(page);
  await load(page, WIDE);
  await expect(page.getByTestId('model-name')).toHaveText(WIDE);
  const requests = (file: string) => asked.filter((a) => a.repo === WIDE && a.file === file).map((a) => a.range);
  for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json']) {
    expect(requests(file), file).toEqual([null]);
  }
  expect(requests('model-00001-of-00002.safetensors')).toEqual([null]);
  expect(requests(SHARD_2)).toEqual([null, `bytes=${CHUNK}-`]);
  expect(requests('model.safetensors')).toEqual([]);
  expect(requests('tree')).toEqual([null, null]);
  kept = await stored(page, WIDE);
  expect(kept.files[SHARD_2]).toBe(wide.get(SHARD_2)!.length);
  expect(kept.records.find((r) => r.path === SHARD_2)?.opfs).toBe(true);
  await page.screenshot({ path: test.info().outputPath('resumed.png'), fullPage: true });

  await load(page, BAD);
  await expect(page.getByTestId('model-error')).toContainText(
    `${SHARD_2} of ${BAD} (Hugging Face) does not match the Hub's file list: its sha256 is ${sha256Hex(bad)} ` +
      `but the Hub lists ${sha256Hex(small.get(SHARD_2)!)}`,
  );
  await page.screenshot({ path: test.info().outputPath('refused.png'), fullPage: true });
  const refused = await stored(page, BAD);
  expect(Object.keys(refused.files)).not.toContain(SHARD_2);
  expect(refused.records.map((r) => r.chunkOf ?? r.path)).not.toContain(SHARD_2);
  expect(refused.records.map((r) => r.path)).toContain('model-00001-of-00002.safetensors');
  // The model loaded before is still the one on the page.
  await expect(page.getByTestId('model-name')).toHaveText(WIDE);
  expect(errors).toEqual([]);
});

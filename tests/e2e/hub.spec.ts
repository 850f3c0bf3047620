import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, type Page, test } from '@playwright/test';
import { hubTree } from '../helpers/hub-repo';
import { collectErrors, MODEL_DIR, openApp } from './helpers';

/** Repositories the fake Hub serves from the local stories260K folder, with the files each lacks. */
const REPOS: Record<string, string[]> = {
  'webtune-test/stories260K': [],
  'webtune-test/no-tokenizer-config': ['tokenizer_config.json'],
};

async function loadFromHub(page: Page, repo: string): Promise<void> {
  await page.getByTestId('hub-id').fill(repo);
  await page.getByTestId('hub-load').click();
  await expect(page.getByTestId('model-name')).toHaveText(repo);
}

/** The Hub's file list of a repository: the stories260K files it has, with sizes and hashes. */
function tree(repo: string): object[] {
  const files = new Map<string, Uint8Array>();
  for (const name of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
    if (!REPOS[repo].includes(name)) files.set(name, new Uint8Array(readFileSync(path.join(MODEL_DIR, name))));
  }
  return hubTree(files);
}

/**
 * The Hub download path without a network: huggingface.co is answered from the local stories260K
 * folder, as the Hub's file list and `resolve` endpoint would answer, so the test checks which
 * files the page asks for, that it skips one the list lacks, and that a second visit reads the
 * browser's storage instead.
 */
test('a Hub model is downloaded once, read from the browser cache on the next visit, and its space can be freed', async ({
  page,
  context,
}) => {
  const errors = collectErrors(page);
  const fetched: string[] = [];
  // What offline.spec.ts relies on: requests the worker makes show up in the context's events.
  const requested: string[] = [];
  context.on('request', (request) => requested.push(request.url()));
  await context.route('https://huggingface.co/**', async (route) => {
    const listed = /^https:\/\/huggingface\.co\/api\/models\/([^/]+\/[^/]+)\/tree\/main$/.exec(route.request().url())?.[1];
    if (listed) {
      if (!(listed in REPOS))
        return route.fulfill({ status: 401, json: { error: 'Repository not found' }, headers: { 'access-control-allow-origin': '*' } });
      return route.fulfill({ status: 200, json: tree(listed), headers: { 'access-control-allow-origin': '*' } });
    }
    const [, repo, file] = /^https:\/\/huggingface\.co\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(route.request().url()) ?? [];
    fetched.push(`${repo}:${file}`);
    const local = path.join(MODEL_DIR, file ?? '');
    if (!(repo in REPOS) || REPOS[repo].includes(file) || !existsSync(local))
      return route.fulfill({ status: 404, body: 'Entry not found' });
    return route.fulfill({ status: 200, body: readFileSync(local), headers: { 'access-control-allow-origin': '*' } });
  });

  await openApp(page);
  await loadFromHub(page, 'webtune-test/stories260K');
  await expect(page.getByTestId('model-architecture')).toHaveText('llama');
  expect(fetched).toEqual(
    ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'].map((f) => `webtune-test/stories260K:${f}`),
  );
  expect(requested).toContain('https://huggingface.co/webtune-test/stories260K/resolve/main/model.safetensors');
  await loadFromHub(page, 'webtune-test/no-tokenizer-config');
  // The file list has no tokenizer_config.json: it is not asked for.
  expect(fetched.slice(4)).toEqual(
    ['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => `webtune-test/no-tokenizer-config:${f}`),
  );

  fetched.length = 0;
  await page.reload();
  await openApp(page);
  await loadFromHub(page, 'webtune-test/stories260K');
  await loadFromHub(page, 'webtune-test/no-tokenizer-config');
  expect(fetched).toEqual([]);

  // An id the Hub does not know is refused with the reason.
  await page.getByTestId('hub-id').fill('webtune-test/missing');
  await page.getByTestId('hub-load').click();
  await expect(page.getByTestId('model-error')).toContainText('webtune-test/missing is not a public model on the Hugging Face Hub');

  // The downloads are listed with their space; the loaded model's stay, the other's are freed and fetched again when needed.
  await page.getByTestId('cached-downloads-section').locator('summary').click();
  await expect(page.getByTestId('cached-downloads-section').locator('summary')).toContainText('2 downloads');
  const stories = page.locator('[data-testid="cached-download"][data-id="webtune-test/stories260K"]');
  const loaded = page.locator('[data-testid="cached-download"][data-id="webtune-test/no-tokenizer-config"]');
  await expect(stories).toContainText('Hub model · 4 files');
  await expect(loaded).toContainText('Hub model · 3 files');
  await expect(loaded).toContainText('loaded');
  await expect(loaded.getByTestId('cached-download-remove')).toBeDisabled();
  await expect(page.getByTestId('storage-usage')).toContainText('This site stores');
  await stories.getByTestId('cached-download-remove').click();
  await expect(page.getByTestId('cached-downloads-error')).toContainText('Removed webtune-test/stories260K');
  await expect(page.getByTestId('cached-download')).toHaveCount(1);
  await loadFromHub(page, 'webtune-test/stories260K');
  expect(fetched).toEqual(
    ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'].map((f) => `webtune-test/stories260K:${f}`),
  );
  await expect(page.getByTestId('cached-download')).toHaveCount(2);
  expect(errors).toEqual([]);
});

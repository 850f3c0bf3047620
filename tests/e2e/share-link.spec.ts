import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { decodeShareLink } from '../../src/site/share-link';
import { collectErrors, DATA_DIR, MODEL_DIR, openApp } from './helpers';

const REPO = 'webtune-test/stories260K';
const MODEL_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors', 'generation_config.json'];
const DATA = 'https://data.example.org';
const size = (file: string) => statSync(file).size;

const LINK =
  `#webtune=1&model=hub:${REPO}&train=url:${DATA}/zog_stories_train.jsonl&eval=url:${DATA}/zog_stories_eval.jsonl` +
  '&preset=rag_enhanced&filter=40-800&r=4&alpha=8&dropout=0&targets=q_proj,v_proj&rslora=0&lr=0.004&epochs=1&batchSize=8' +
  '&gradAccum=1&warmupSteps=0&schedule=cosine&weightDecay=0.01&maxGradNorm=1&maxLength=24&packing=0&evalFraction=0.1' +
  '&evalEvery=0&checkpointEvery=0&seed=7';

test('a share link lists what it downloads, sets everything up once confirmed, and Copy share link gives it back', async ({
  page,
  context,
}) => {
  const errors = collectErrors(page);
  const asked: string[] = [];
  await context.route('https://huggingface.co/**', (route) => {
    const url = route.request().url();
    asked.push(url);
    const cors = { 'access-control-allow-origin': '*' };
    if (url === `https://huggingface.co/api/models/${REPO}/tree/main`) {
      const entries = MODEL_FILES.map((name) => ({ type: 'file', path: name, size: size(path.join(MODEL_DIR, name)) }));
      return route.fulfill({ status: 200, json: [{ type: 'file', path: '.gitattributes', size: 1519 }, ...entries], headers: cors });
    }
    const file = new RegExp(`^https://huggingface\\.co/${REPO}/resolve/main/(.+)$`).exec(url)?.[1];
    if (!file || !MODEL_FILES.includes(file)) return route.fulfill({ status: 404, body: 'Entry not found', headers: cors });
    return route.fulfill({ status: 200, body: readFileSync(path.join(MODEL_DIR, file)), headers: cors });
  });
  await context.route(`${DATA}/**`, (route) => {
    asked.push(`${route.request().method()} ${route.request().url()}`);
    const body = readFileSync(path.join(DATA_DIR, new URL(route.request().url()).pathname.slice(1)));
    const headers = { 'access-control-allow-origin': '*', 'content-length': String(body.length) };
    return route.fulfill({ status: 200, body: route.request().method() === 'HEAD' ? '' : body, headers });
  });

  await page.goto(`/${LINK}`);
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  const dialog = page.getByTestId('share-confirm');
  await expect(dialog).toBeVisible();
  const items = dialog.getByTestId('share-item');
  await expect(items).toHaveCount(3);
  const modelBytes = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'].reduce(
    (sum, f) => sum + size(path.join(MODEL_DIR, f)),
    0,
  );
  await expect(items.nth(0)).toHaveAttribute('data-bytes', String(modelBytes));
  await expect(items.nth(0)).toContainText(`Model ${REPO}: config.json (514 B)`);
  await expect(items.nth(0)).toContainText('model.safetensors (1020.5 KiB)');
  await expect(items.nth(1)).toHaveAttribute('data-bytes', String(size(path.join(DATA_DIR, 'zog_stories_train.jsonl'))));
  await expect(items.nth(1)).toContainText(`${DATA}/zog_stories_train.jsonl`);
  await expect(items.nth(2)).toHaveAttribute('data-bytes', String(size(path.join(DATA_DIR, 'zog_stories_eval.jsonl'))));
  // Asking for sizes downloads nothing: the Hub's file list and HEAD requests only.
  expect(asked.filter((url) => url.includes('/resolve/') || url.startsWith('GET'))).toEqual([]);
  await page.screenshot({ path: test.info().outputPath('share-confirm.png'), fullPage: true });

  await page.getByTestId('share-accept').click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId('model-name')).toHaveText(REPO);
  const expected = decodeShareLink(LINK, new URL(page.url()).origin);
  const s = expected.settings;
  for (const [key, value] of Object.entries({
    r: 4,
    alpha: 8,
    lr: 0.004,
    epochs: 1,
    batchSize: 8,
    maxLength: 24,
    seed: 7,
    weightDecay: 0.01,
  })) {
    await expect(page.getByTestId(`setting-${key}`)).toHaveValue(String(value));
  }
  await expect(page.getByTestId('target-q_proj')).toBeChecked();
  await expect(page.getByTestId('target-k_proj')).not.toBeChecked();
  await expect(page.getByTestId('target-v_proj')).toBeChecked();
  await expect(page.getByTestId('setting-schedule')).toHaveValue(s.schedule);
  await expect(page.getByTestId('preset-applied')).toHaveAttribute('data-preset', 'rag_enhanced');
  await expect(page.getByTestId('train-dataset-select').locator('option:checked')).toHaveText('zog stories train (24 rows)');
  await expect(page.getByTestId('eval-dataset-select').locator('option:checked')).toHaveText('zog stories eval (6 rows)');

  await page.getByTestId('copy-share-link').click();
  const copied = await page.getByTestId('share-link').inputValue();
  await expect(page.getByTestId('share-unshareable')).toHaveText('Model, data, preset and settings are all in the link.');
  expect(decodeShareLink(new URL(copied).hash, new URL(page.url()).origin)).toEqual(expected);

  await page.getByTestId('start-training').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', /running|completed/);
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'completed', { timeout: 10 * 60_000 });
  expect(errors).toEqual([]);
});

test('a hostile share link is refused with the reason, and nothing is fetched or rendered', async ({ page, context }) => {
  const asked: string[] = [];
  context.on('request', (request) => asked.push(request.url()));
  await openApp(page);
  const origin = new URL(page.url()).origin;
  asked.length = 0;
  await page.goto(`/#webtune=1&model=hub:a/b&evil=${encodeURIComponent('<img src=x onerror="document.title=1">')}`);
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  await expect(page.getByTestId('share-error')).toHaveText(
    'This share link cannot be opened: it has an unknown field "evil". Nothing was downloaded; ask for a new link.',
  );
  await page.evaluate(() => {
    location.hash = '#webtune=1&model=url:javascript:alert(1)';
  });
  await expect(page.getByTestId('share-error')).toContainText('is not an https URL');
  await expect(page.getByTestId('share-accept')).toHaveCount(0);
  await expect(page.locator('img')).toHaveCount(0);
  expect(asked.filter((url) => !url.startsWith(origin) && !/^(blob|data):/.test(url))).toEqual([]);
});

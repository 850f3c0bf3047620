import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, type Page, test } from '@playwright/test';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { collectErrors, DATA_DIR, openApp } from './helpers';

const TRAIN = readFileSync(path.join(DATA_DIR, 'zog_stories_train.jsonl'), 'utf8');
const STORIES: string[] = TRAIN.trim()
  .split('\n')
  .map((line) => (JSON.parse(line) as { text: string }).text);

/** Fixtures made here: Parquet by hyparquet-writer, the JSON list and the broken files by hand. */
const SITE = 'https://data.example.org';
const PARQUET_URL = 'https://huggingface.co/datasets/webtune-test/zog/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet';
const FILES: Record<string, Buffer> = {
  [`${SITE}/zog.jsonl`]: Buffer.from(TRAIN),
  [`${SITE}/zog.json`]: Buffer.from(`[\n${STORIES.map((text) => `  ${JSON.stringify({ text })}`).join(',\n')}\n]\n`),
  [`${SITE}/broken.json`]: Buffer.from('[\n  {"text": "Zog flew."},\n  {"txt": "typo"},\n  42\n]\n'),
  [`${SITE}/broken.parquet`]: Buffer.from(
    parquetWriteBuffer({
      columnData: [
        { name: 'prompt', data: ['Who is Zog?', 'Who is Lily?', null], type: 'STRING' },
        { name: 'completion', data: ['A little dragon.', '', 'Nobody.'], type: 'STRING' },
      ],
    }),
  ),
  [PARQUET_URL]: Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'text', data: STORIES, type: 'STRING' }] })),
  'https://datasets-server.huggingface.co/parquet?dataset=webtune-test%2Fzog': Buffer.from(
    JSON.stringify({
      parquet_files: [
        { dataset: 'webtune-test/zog', config: 'default', split: 'train', url: PARQUET_URL, filename: '0000.parquet', size: 1 },
      ],
    }),
  ),
};

async function fetchSource(page: Page, source: string): Promise<void> {
  await page.getByTestId('dataset-source').fill(source);
  await page.getByTestId('dataset-source-train').click();
  await expect(page.getByTestId('import-preview')).toBeVisible();
}

test('datasets from a URL or the Hub: JSONL, JSON and Parquet, broken rows reported, the second fetch from the cache', async ({
  page,
  context,
}) => {
  const errors = collectErrors(page);
  const asked: string[] = [];
  for (const host of [SITE, 'https://huggingface.co', 'https://datasets-server.huggingface.co']) {
    await context.route(`${host}/**`, (route) => {
      const url = route.request().url();
      asked.push(url);
      const body = FILES[url];
      if (!body) return route.fulfill({ status: 404, body: 'not found', headers: { 'access-control-allow-origin': '*' } });
      return route.fulfill({ status: 200, body, headers: { 'access-control-allow-origin': '*' } });
    });
  }
  await openApp(page);
  await page.getByTestId('step-data').click();
  const valid = page.getByTestId('preview-valid');
  const invalid = page.getByTestId('preview-invalid');

  await test.step('JSONL from a URL', async () => {
    await fetchSource(page, `${SITE}/zog.jsonl`);
    await expect(valid).toHaveAttribute('data-count', '24');
    await expect(invalid).toHaveAttribute('data-count', '0');
    await page.getByTestId('import-confirm').click();
    await expect(page.getByTestId('dataset-item')).toHaveCount(1);
    await expect(page.getByTestId('dataset-item')).toContainText('from zog.jsonl');
  });

  await test.step('a JSON list of rows', async () => {
    await fetchSource(page, `${SITE}/zog.json`);
    await expect(valid).toHaveAttribute('data-count', '24');
    await expect(page.getByTestId('import-preview')).toContainText(STORIES[0].slice(0, 60));
    await page.getByTestId('import-cancel').click();
  });

  await test.step('a broken JSON list: each refused entry with its number and line', async () => {
    await fetchSource(page, `${SITE}/broken.json`);
    await expect(valid).toHaveAttribute('data-count', '1');
    const rows = page.getByTestId('import-error');
    await expect(rows).toHaveCount(2);
    await expect(rows.nth(0)).toHaveAttribute('data-entry', '2');
    await expect(rows.nth(0)).toHaveAttribute('data-line', '3');
    await expect(rows.nth(0)).toContainText('unknown format: found keys "txt"');
    await expect(rows.nth(1)).toHaveAttribute('data-entry', '3');
    await expect(rows.nth(1)).toContainText('not an object: the entry is a number');
    await page.getByTestId('import-cancel').click();
  });

  await test.step('a Parquet table with broken rows', async () => {
    await fetchSource(page, `${SITE}/broken.parquet`);
    await expect(valid).toHaveAttribute('data-count', '1');
    await expect(page.getByTestId('import-errors').locator('th').first()).toHaveText('Row');
    const rows = page.getByTestId('import-error');
    await expect(rows).toHaveCount(2);
    await expect(rows.nth(0)).toHaveAttribute('data-entry', '2');
    await expect(rows.nth(0)).toContainText('empty "completion"');
    await expect(rows.nth(1)).toHaveAttribute('data-entry', '3');
    await expect(rows.nth(1)).toContainText('"prompt"');
    await page.getByTestId('import-cancel').click();
  });

  await test.step('a Hub dataset through the Parquet listing', async () => {
    await fetchSource(page, 'webtune-test/zog');
    await expect(valid).toHaveAttribute('data-count', '24');
    await expect(page.getByTestId('import-preview')).toContainText('webtune-test/zog train');
    await page.getByTestId('import-confirm').click();
    await expect(page.getByTestId('dataset-item')).toHaveCount(2);
  });

  await test.step('the same sources again, after a reload: from IndexedDB, no request', async () => {
    await page.reload();
    await openApp(page);
    await page.getByTestId('step-data').click();
    asked.length = 0;
    await fetchSource(page, `${SITE}/broken.parquet`);
    await expect(page.getByTestId('import-error')).toHaveCount(2);
    await page.getByTestId('import-cancel').click();
    await fetchSource(page, 'webtune-test/zog');
    await expect(valid).toHaveAttribute('data-count', '24');
    await expect(page.getByTestId('dataset-source-status')).toContainText('From cache 0000.parquet');
    expect(asked).toEqual([]);
  });

  await test.step('a source that is neither a URL nor a Hub dataset, and a missing file', async () => {
    await page.getByTestId('import-cancel').click();
    await page.getByTestId('dataset-source').fill('not a dataset');
    await page.getByTestId('dataset-source-train').click();
    await expect(page.getByTestId('data-error')).toContainText('is neither an https URL nor a Hugging Face dataset');
    await page.getByTestId('dataset-source').fill(`${SITE}/missing.jsonl`);
    await page.getByTestId('dataset-source-train').click();
    await expect(page.getByTestId('data-error')).toContainText(`${SITE}/missing.jsonl does not exist (HTTP 404)`);
  });
  expect(errors.filter((e) => !e.includes('404'))).toEqual([]);
});

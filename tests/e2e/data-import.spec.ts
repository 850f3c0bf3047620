import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { parseImportBytes } from '../../src/data/import';
import { collectErrors, DATA_DIR, openApp } from './helpers';

const BAD_DIR = path.join(DATA_DIR, 'bad');

test('every file in data/bad shows its report, and cancelling stores nothing', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await openApp(page);
  await page.getByTestId('step-data').click();
  const datasets = page.getByTestId('dataset-item');
  await expect(datasets).toHaveCount(0);

  const files = readdirSync(BAD_DIR).sort();
  expect(files.length).toBeGreaterThan(0);
  for (const name of files) {
    const file = path.join(BAD_DIR, name);
    // The same reader the worker runs, as the reference for what the page must report.
    const expected = parseImportBytes(new Uint8Array(readFileSync(file)), { fileName: name });
    await test.step(name, async () => {
      await page.getByTestId('dataset-file-train').setInputFiles(file);
      const preview = page.getByTestId('import-preview');
      await expect(preview).toBeVisible();
      await expect(preview).toContainText(name);
      await expect(page.getByTestId('preview-valid')).toHaveAttribute('data-count', String(expected.rows.length));
      await expect(page.getByTestId('preview-invalid')).toHaveAttribute('data-count', String(expected.errors.length));
      const rows = page.getByTestId('import-error');
      await expect(rows).toHaveCount(expected.errors.length);
      for (const [i, lineError] of expected.errors.entries()) {
        const row = rows.nth(i);
        await expect(row).toHaveAttribute('data-line', String(lineError.line));
        await expect(row).toContainText(lineError.reason);
      }
      if (expected.rows.length === 0) await expect(page.getByTestId('import-confirm')).toBeDisabled();
      await preview.screenshot({ path: testInfo.outputPath(`${name}.png`) });
      await page.getByTestId('import-cancel').click();
      await expect(preview).toBeHidden();
      await expect(datasets).toHaveCount(0);
    });
  }

  // Nothing reached storage: a fresh page reads the same empty list back from IndexedDB.
  await page.reload();
  await openApp(page);
  await page.getByTestId('step-data').click();
  await expect(datasets).toHaveCount(0);

  // A file with invalid lines, confirmed, stores exactly its valid rows as one dataset.
  const mixed = path.join(BAD_DIR, 'mixed_errors.jsonl');
  const mixedReport = parseImportBytes(new Uint8Array(readFileSync(mixed)), { fileName: 'mixed_errors.jsonl' });
  await page.getByTestId('dataset-file-train').setInputFiles(mixed);
  await page.getByTestId('import-confirm').click();
  await expect(datasets).toHaveCount(1);
  await expect(datasets.first()).toContainText(`${mixedReport.rows.length} row`);
  await expect(datasets.first()).toContainText(`${mixedReport.errors.length} invalid lines skipped`);

  // Open WebUI's JSON export: each broken chat is reported with its entry in the list.
  const webui = path.join(path.dirname(fileURLToPath(import.meta.url)), '../data/imports/open_webui_export.json');
  const webuiReport = parseImportBytes(new Uint8Array(readFileSync(webui)), { fileName: 'open_webui_export.json' });
  await page.getByTestId('dataset-file-train').setInputFiles(webui);
  await expect(page.getByTestId('preview-valid')).toHaveAttribute('data-count', String(webuiReport.rows.length));
  const entryRows = page.getByTestId('import-error');
  await expect(entryRows).toHaveCount(webuiReport.errors.length);
  for (const [i, entryError] of webuiReport.errors.entries()) {
    await expect(entryRows.nth(i)).toHaveAttribute('data-entry', String(entryError.entry));
    // A JSON list's errors show the entry and the line it starts on, each in its own column.
    await expect(entryRows.nth(i).locator('td').nth(0)).toHaveText(String(entryError.entry));
    await expect(entryRows.nth(i).locator('td').nth(1)).toHaveText(String(entryError.line));
    await expect(entryRows.nth(i)).toContainText(entryError.reason);
  }
  await page.getByTestId('import-confirm').click();
  await expect(datasets).toHaveCount(2);
  expect(errors).toEqual([]);
});

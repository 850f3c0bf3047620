import path from 'node:path';
import { expect, type Download, type Page, test } from '@playwright/test';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

/**
 * The Zog training file is eight stories, each three times. The filter keeps the eight; eight
 * epochs in steps of four stories make 16 steps, as many story passes as three epochs over all 24.
 */
const EPOCHS = 8;
const STEPS = 2 * EPOCHS;

async function downloadedText(page: Page, testId: string): Promise<{ name: string; text: string }> {
  const event = page.waitForEvent('download');
  await page.getByTestId(testId).click();
  const download: Download = await event;
  const chunks = await (await download.createReadStream()).toArray();
  return { name: download.suggestedFilename(), text: Buffer.concat(chunks).toString('utf8') };
}

/** RFC 4180 records (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      field = '';
      record = [];
      i++;
    } else field += c;
  }
  return records;
}

const metric = (page: Page, id: string, side: 'before' | 'after') =>
  page.locator(`[data-testid="eval-metric"][data-metric="${id}"] [data-testid="${side}"]`);

async function evaluateOn(page: Page, datasetName: string, maxNewTokens: number): Promise<void> {
  await page.getByTestId('step-evaluate').click();
  const select = page.getByTestId('eval-dataset');
  await select.selectOption((await select.locator('option', { hasText: `${datasetName} (` }).getAttribute('value'))!);
  await page.getByTestId('eval-max-tokens').fill(String(maxNewTokens));
  await page.getByTestId('eval-temperature').fill('0');
  await page.getByTestId('eval-run').click();
  await expect(page.locator('[data-step="evaluate"]')).toHaveAttribute('data-state', 'done', { timeout: 10 * 60_000 });
}

test('analysis → preset → filter → training → evaluation: perplexity drops, reports download', async ({ page }, testInfo) => {
  test.setTimeout(30 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);

  // The analysis shows right after choosing the file, before anything is stored.
  await page.getByTestId('step-data').click();
  await page.getByTestId('dataset-file-train').setInputFiles(path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  const analysis = page.getByTestId('import-preview').getByTestId('analysis-report');
  await expect(analysis).toHaveAttribute('data-conversations', '24');
  await expect(analysis.locator('[data-testid="task-row"][data-task="conversational_chat"]')).toHaveAttribute('data-percent', '100');
  await expect(analysis.getByTestId('recommendation')).toHaveAttribute('data-strategy', 'single');
  await expect(analysis.getByTestId('recommendation')).toContainText('conversational_chat');
  await page.getByTestId('import-confirm').click();
  await importDataset(page, 'eval', path.join(DATA_DIR, 'zog_stories_eval.jsonl'));

  // The recommended preset fills the settings; on 24 rows its warmup of 50 steps is cut.
  await page.getByTestId('step-settings').click();
  await expect(page.getByTestId('preset-select')).toHaveValue('conversational_chat');
  await page.getByTestId('preset-apply').click();
  await expect(page.getByTestId('preset-applied')).toHaveAttribute('data-preset', 'conversational_chat');
  await expect(page.getByTestId('setting-batchSize')).toHaveValue('8');
  await expect(page.getByTestId('warmup-note')).toContainText('warmup shortened from 50');
  // Its 400-character bound drops stories of 401 to 407 characters as well as the copies.
  await expect(page.locator('[data-testid="filter-rule"][data-rule="response_length"]')).toHaveAttribute('data-count', '9');

  // Edited for a short run on SwiftShader; the wider bound keeps every distinct story.
  await setSettings(page, {
    targets: ['q_proj', 'k_proj', 'v_proj'],
    numbers: { r: 8, alpha: 16, dropout: 0, lr: 5e-3, batchSize: 4, gradAccum: 1, epochs: EPOCHS, warmupSteps: 0, maxResponseChars: 1000 },
  });
  const filter = page.getByTestId('filter-report');
  await expect(filter).toHaveAttribute('data-kept', '8');
  await expect(page.locator('[data-testid="filter-rule"][data-rule="exact_duplicate"]')).toHaveAttribute('data-count', '16');
  await page.locator('[data-testid="filter-rule"][data-rule="exact_duplicate"] summary').click();
  await expect(page.getByTestId('removed-row')).toHaveCount(16);
  await expect(page.getByTestId('removed-row').first()).toContainText('same content as row 1');
  await expect(page.getByTestId('run-plan')).toContainText(`8 training rows after the quality filter`);
  await expect(page.getByTestId('run-plan')).toContainText(`${STEPS} in all`);
  await page.getByTestId('quality-filter').screenshot({ path: testInfo.outputPath('filter.png') });

  const started = Date.now();
  await startTraining(page, 'zog filtered');
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'completed', { timeout: 20 * 60_000 });
  testInfo.annotations.push({ type: 'training time', description: `${((Date.now() - started) / 1000).toFixed(0)} s for ${STEPS} steps` });
  await expect(page.getByTestId('run-step')).toHaveText(`${STEPS} / ${STEPS}`);

  const evalStarted = Date.now();
  await evaluateOn(page, 'zog stories eval', 4);
  testInfo.annotations.push({ type: 'evaluation time', description: `${((Date.now() - evalStarted) / 1000).toFixed(0)} s` });
  const before = Number(await metric(page, 'perplexity', 'before').getAttribute('data-value'));
  const after = Number(await metric(page, 'perplexity', 'after').getAttribute('data-value'));
  testInfo.annotations.push({ type: 'perplexity', description: `${before.toFixed(3)} -> ${after.toFixed(3)}` });
  expect(before).toBeGreaterThan(1);
  expect(after).toBeLessThan(before);
  await expect(page.getByTestId('eval-example')).toHaveCount(6);
  await page.getByTestId('eval-report').screenshot({ path: testInfo.outputPath('evaluation.png') });

  const json = await downloadedText(page, 'eval-download-json');
  expect(json.name).toMatch(/\.json$/);
  const report = JSON.parse(json.text);
  expect(report.before.perplexity).toBeCloseTo(before, 9);
  expect(report.after.perplexity).toBeCloseTo(after, 9);
  expect(report.after.label).toBe('zog filtered');
  expect(report.examples).toHaveLength(12);

  const csv = await downloadedText(page, 'eval-download-csv');
  expect(csv.name).toMatch(/\.csv$/);
  const [header, ...records] = parseCsv(csv.text);
  const column = (name: string) => header.indexOf(name);
  expect(header.slice(0, 4)).toEqual(['record', 'model', 'label', 'index']);
  expect(records.filter((r) => r[column('record')] === 'example')).toHaveLength(12);
  const summary = (model: string) => records.find((r) => r[column('record')] === 'summary' && r[column('model')] === model)!;
  expect(Number(summary('before')[column('perplexity')])).toBeCloseTo(before, 9);
  expect(Number(summary('after')[column('perplexity')])).toBeCloseTo(after, 9);

  // RAG metrics side by side: the chat log's rows with a Context: block get short generated answers.
  await importDataset(page, 'eval', path.join(DATA_DIR, 'chat_rag_sample.jsonl'));
  await evaluateOn(page, 'chat rag sample', 3);
  for (const id of ['context-usage', 'source-attribution', 'missing-source-rate', 'token-f1']) {
    for (const side of ['before', 'after'] as const) await expect(metric(page, id, side)).toHaveAttribute('data-value', /^[\d.e-]+$/);
  }
  await expect(page.locator('[data-testid="eval-example"] .tag')).toHaveCount(10);
  await page.getByTestId('eval-report').screenshot({ path: testInfo.outputPath('evaluation-rag.png') });
  expect(errors).toEqual([]);
});

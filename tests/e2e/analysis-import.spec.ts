import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { analyzeDataset } from '../../src/analysis/analyze';
import { TASK_IDS } from '../../src/analysis/tasks';
import { parseImportBytes } from '../../src/data/import';
import { collectErrors, DATA_DIR, openApp } from './helpers';

const SAMPLE = path.join(DATA_DIR, 'chat_rag_sample.jsonl');

test('a chat log shows its task analysis and recommendation on import, and its preset fills the settings', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  // The library the worker runs, as the reference for what the page must show.
  const expected = analyzeDataset(parseImportBytes(new Uint8Array(readFileSync(SAMPLE))).rows);
  await openApp(page);
  await page.getByTestId('step-data').click();
  await page.getByTestId('dataset-file-train').setInputFiles(SAMPLE);

  const report = page.getByTestId('import-preview').getByTestId('analysis-report');
  await expect(report).toBeVisible();
  await expect(report).toHaveAttribute('data-conversations', '31');
  for (const task of TASK_IDS) {
    const row = report.locator(`[data-testid="task-row"][data-task="${task}"]`);
    await expect(row).toHaveAttribute('data-count', String(expected.distribution[task].count));
    await expect(row).toHaveAttribute('data-percent', String(expected.distribution[task].percent));
  }
  for (const task of ['rag_enhanced', 'code_generation', 'conversational_chat']) {
    expect(Number(await report.locator(`[data-testid="task-row"][data-task="${task}"]`).getAttribute('data-count'))).toBeGreaterThan(0);
  }
  await expect(report.getByTestId('avg-response-chars')).toHaveAttribute('data-value', String(expected.avgResponseChars));
  await expect(report.getByTestId('question-type')).toHaveCount(3);
  await expect(report.getByTestId('rag-conversations')).toHaveAttribute('data-count', '10');
  // Rows are numbered from 1 everywhere the report shows them.
  await expect(report.getByTestId('rag-conversations')).toContainText(`: rows ${expected.ragIndices.map((i) => i + 1).join(', ')}`);
  const recommendation = report.getByTestId('recommendation');
  // The guide's advice: rag_enhanced leads clearly (10 against 7), so start single-task on it.
  await expect(recommendation).toHaveAttribute('data-strategy', 'single');
  await expect(recommendation).toContainText('rag_enhanced');
  await expect(recommendation.getByTestId('recommendation-reason')).toHaveCount(expected.recommendation.reasons.length);
  // Its preset, the task filter it brings, and the next steps with their reasons.
  await expect(recommendation).toContainText('preset: rag_enhanced');
  await expect(recommendation.getByTestId('recommendation-task-filter')).toHaveAttribute('data-task', 'rag_enhanced');
  const steps = recommendation.getByTestId('next-step');
  await expect(steps).toHaveCount(2);
  await expect(steps.nth(0)).toHaveAttribute('data-strategy', 'multi');
  await expect(steps.nth(0)).toContainText(expected.recommendation.nextSteps[0].reason);
  await expect(steps.nth(1)).toHaveAttribute('data-strategy', 'progressive');
  await expect(steps.nth(1)).toContainText(expected.recommendation.nextSteps[1].reason);

  // Each conversation lists the signals that fired: the first RAG row fired the context block.
  await report.getByTestId('conversation-list').locator('summary').first().click();
  const rag = report.locator(`[data-testid="conversation"][data-index="${expected.ragIndices[0]}"]`);
  await expect(rag).toHaveAttribute('data-task', 'rag_enhanced');
  await expect(rag.locator('summary')).toContainText(`row ${expected.ragIndices[0] + 1} · `);
  await rag.locator('summary').click();
  await expect(rag.locator('[data-testid="signal"][data-signal="rag.context_block"]')).toBeVisible();
  await page.getByTestId('import-preview').screenshot({ path: testInfo.outputPath('analysis.png') });

  await page.getByTestId('import-confirm').click();
  await expect(page.getByTestId('train-analysis').getByTestId('recommendation')).toHaveAttribute('data-strategy', 'single');

  // The recommended preset is preselected; applying it fills the settings and caps its warmup.
  await page.getByTestId('step-settings').click();
  await expect(page.getByTestId('preset-select')).toHaveValue('rag_enhanced');
  await page.getByTestId('preset-apply').click();
  await expect(page.getByTestId('preset-applied')).toHaveAttribute('data-preset', 'rag_enhanced');
  await expect(page.getByTestId('setting-r')).toHaveValue('20');
  await expect(page.getByTestId('setting-lr')).toHaveValue('0.0002');
  await expect(page.getByTestId('setting-maxResponseChars')).toHaveValue('800');
  await expect(page.getByTestId('warmup-note')).toContainText('warmup shortened from 100 to 0 steps');
  await expect(page.getByTestId('setting-warmupSteps')).toHaveValue('0');
  // The single-task advice is followed, so the task filter is on: the 10 rag_enhanced rows are kept.
  await expect(page.getByTestId('task-filter')).toBeChecked();
  await expect(page.getByTestId('filter-report')).toHaveAttribute('data-kept', '10');
  await expect(page.locator('[data-testid="filter-rule"][data-rule="other_task"]')).toHaveAttribute('data-count', '21');
  await expect(page.getByTestId('run-plan')).toContainText('9 training rows after the quality filter');
  await page.getByTestId('task-filter').uncheck();
  await expect(page.getByTestId('filter-report')).toHaveAttribute('data-kept', '31');
  await expect(page.locator('[data-testid="filter-rule"][data-rule="other_task"]')).toHaveCount(0);

  // An edit the preset rules refuse names the field.
  await page.getByTestId('setting-r').fill('0');
  await expect(page.getByTestId('settings-error')).toContainText('field "lora.r"');
  await page.getByTestId('setting-r').fill('16');
  await page.getByTestId('setting-minResponseChars').fill('2000');
  await expect(page.getByTestId('settings-error')).toContainText('field "filter.maxResponseChars"');
  await page.getByTestId('setting-minResponseChars').fill('60');
  await expect(page.getByTestId('settings-error')).toBeHidden();
  await expect(page.getByTestId('filter-report')).not.toHaveAttribute('data-kept', '31');
  const kept = Number(await page.getByTestId('filter-report').getAttribute('data-kept'));
  const removed = await page.locator('[data-testid="filter-rule"][data-rule="response_length"]').getAttribute('data-count');
  expect(kept).toBeLessThan(31);
  expect(kept + Number(removed)).toBe(31);
  await page.getByTestId('quality-filter').screenshot({ path: testInfo.outputPath('filter.png') });

  // Bounds no row meets, with the task filter back on: the message names both rules and what to change.
  await page.getByTestId('task-filter').check();
  await page.getByTestId('setting-minResponseChars').fill('790');
  await expect(page.getByTestId('filter-report')).toHaveAttribute('data-kept', '0');
  await expect(page.getByTestId('filter-empty')).toContainText('(other_task removed 21, response_length removed 10)');
  await expect(page.getByTestId('filter-empty')).toContainText('turn the task filter off');
  expect(errors).toEqual([]);
});

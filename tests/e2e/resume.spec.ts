import path from 'node:path';
import { expect, test } from '@playwright/test';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

test('a reload in the middle of training keeps the data and the run, which resumes from its checkpoint', async ({ page }, testInfo) => {
  test.setTimeout(30 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);
  await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  // Nine short steps with a checkpoint after each: enough that the reload lands mid-run.
  await setSettings(page, { numbers: { batchSize: 8, epochs: 3, maxLength: 32, evalFraction: 0, checkpointEvery: 1 } });
  await startTraining(page, 'interrupted');
  await expect(page.getByTestId('run-checkpoint')).toHaveAttribute('data-value', /^[1-9]/, { timeout: 20 * 60_000 });
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'running');

  await page.reload();
  await openApp(page);
  await page.getByTestId('step-data').click();
  await expect(page.getByTestId('dataset-item')).toHaveCount(1);
  await expect(page.getByTestId('dataset-item')).toContainText('24 rows');

  await page.getByTestId('step-training').click();
  const resume = page.getByTestId('resume-run');
  await expect(resume).toHaveCount(1);
  await expect(page.getByTestId('unfinished-runs')).toContainText('Load stories260K in step 1 to resume it');
  await expect(resume).toBeDisabled();
  await page.screenshot({ path: testInfo.outputPath('after-reload.png'), fullPage: true });

  await loadLocalModel(page);
  await page.getByTestId('step-training').click();
  const label = await resume.innerText();
  const checkpoint = Number(/Resume from step (\d+)/.exec(label)?.[1]);
  expect(checkpoint).toBeGreaterThanOrEqual(1);
  expect(checkpoint).toBeLessThan(9);
  await resume.click();

  const panel = page.locator('[data-step="training"]');
  await expect(panel).toHaveAttribute('data-resumed-from', String(checkpoint));
  await expect(page.getByTestId('run-message')).toContainText(`Resumed from the checkpoint at step ${checkpoint}`);
  // The stored history is back on the chart before the first new step.
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-train-points', String(checkpoint));
  await expect(panel).toHaveAttribute('data-first-step', String(checkpoint + 1), { timeout: 20 * 60_000 });
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'completed', { timeout: 20 * 60_000 });
  await expect(page.getByTestId('run-step')).toHaveText('9 / 9');
  await expect(page.getByTestId('loss-chart')).toHaveAttribute('data-train-points', '9');
  await page.screenshot({ path: testInfo.outputPath('resumed-finished.png'), fullPage: true });
  await expect(page.getByTestId('unfinished-runs')).toBeEmpty();
  expect(errors).toEqual([]);
});

import path from 'node:path';
import { expect, test } from '@playwright/test';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

test('pause, resume and stop a run from the page, then rename and delete its adapter', async ({ page }) => {
  test.setTimeout(30 * 60_000);
  const errors = collectErrors(page);
  page.on('dialog', (dialog) => void dialog.accept());
  await openApp(page);
  await loadLocalModel(page);
  await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  // Twelve short steps, checkpoints only where pausing or stopping asks for one.
  await setSettings(page, { numbers: { batchSize: 8, epochs: 4, maxLength: 32, evalFraction: 0, checkpointEvery: 0 } });
  await startTraining(page, 'controls');

  const panel = page.locator('[data-step="training"]');
  const status = page.getByTestId('run-status');
  await expect(panel).toHaveAttribute('data-first-step', '1', { timeout: 10 * 60_000 });
  // A step redraws the training view and its stepper line only: nothing else on the page changes.
  await page.evaluate(() => {
    const changed: string[] = [];
    (window as unknown as { changedOutsideTraining: string[] }).changedOutsideTraining = changed;
    const inside = [document.querySelector('[data-step="training"]')!, document.querySelector('[data-testid="step-training"]')!];
    new MutationObserver((records) => {
      for (const r of records) {
        const where = (r.target as Element).outerHTML?.slice(0, 80) ?? r.target.nodeName;
        if (!inside.some((node) => node.contains(r.target))) changed.push(`${r.type} in ${where}`);
      }
    }).observe(document.querySelector('main')!, { subtree: true, childList: true, attributes: true, characterData: true });
  });
  const step = async () => Number(await page.getByTestId('run-step').getAttribute('data-value'));
  const firstStep = await step();
  await expect.poll(step, { timeout: 10 * 60_000 }).toBeGreaterThan(firstStep);
  expect(await page.evaluate(() => (window as unknown as { changedOutsideTraining: string[] }).changedOutsideTraining)).toEqual([]);
  await page.getByTestId('pause').click();
  await expect(status).toHaveAttribute('data-state', 'paused', { timeout: 10 * 60_000 });
  const pausedAt = Number(await page.getByTestId('run-step').getAttribute('data-value'));
  expect(pausedAt).toBeGreaterThanOrEqual(1);
  expect(pausedAt).toBeLessThan(12);
  await expect(page.getByTestId('run-checkpoint')).toHaveAttribute('data-value', String(pausedAt));

  await page.getByTestId('resume').click();
  await expect(panel).toHaveAttribute('data-first-step', String(pausedAt + 1), { timeout: 10 * 60_000 });
  await page.getByTestId('stop').click();
  await expect(status).toHaveAttribute('data-state', 'stopped', { timeout: 10 * 60_000 });
  const stoppedAt = Number(await page.getByTestId('run-step').getAttribute('data-value'));
  expect(stoppedAt).toBeGreaterThan(pausedAt);

  await page.getByTestId('step-adapters').click();
  const row = page.getByTestId('adapter-row');
  await expect(row).toHaveCount(1);
  await expect(row.getByTestId('adapter-name')).toHaveText(`controls (stopped at step ${stoppedAt})`);
  await row.getByTestId('adapter-rename').click();
  await row.getByTestId('adapter-name-input').fill('zog, early');
  await row.getByTestId('adapter-rename-save').click();
  await expect(row.getByTestId('adapter-name')).toHaveText('zog, early');
  await row.getByTestId('adapter-delete').click();
  await expect(row).toHaveCount(0);
  expect(errors).toEqual([]);
});

import path from 'node:path';
import { expect, test } from '@playwright/test';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

test('from loading a local model until the adapter is saved, no request leaves the page origin', async ({ page, context, baseURL }) => {
  test.setTimeout(30 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);

  // Recorded on the context, which also sees requests made by the page's workers.
  const requests: string[] = [];
  context.on('request', (request) => requests.push(request.url()));

  await loadLocalModel(page);
  await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  await importDataset(page, 'eval', path.join(DATA_DIR, 'zog_stories_eval.jsonl'));
  await setSettings(page, { numbers: { batchSize: 8, epochs: 1, maxLength: 32 } });
  await startTraining(page, 'offline');
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'completed', { timeout: 25 * 60_000 });
  await page.getByTestId('step-adapters').click();
  await expect(page.getByTestId('adapter-row')).toHaveCount(1);

  const origin = new URL(baseURL!).origin;
  const outside = requests.filter((url) => !url.startsWith('blob:') && !url.startsWith('data:') && new URL(url).origin !== origin);
  expect(outside).toEqual([]);
  expect(errors).toEqual([]);
});

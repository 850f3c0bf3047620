import path from 'node:path';
import { expect, test } from '@playwright/test';
import { armHook, expectRunState, storeRecords } from './faults';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

interface RunRow {
  name: string;
  history: { step: number; loss?: number }[];
}

const losses = (run: RunRow) => run.history.flatMap((p) => (p.loss === undefined ? [] : [[p.step, p.loss]]));

test('a device lost during a step pauses the run with the reason; it resumes on a new device with the losses of an unbroken run', async ({
  page,
}, testInfo) => {
  test.setTimeout(20 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);
  await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  // Three steps (24 stories, batch 8), a checkpoint after each.
  await setSettings(page, { numbers: { batchSize: 8, epochs: 1, maxLength: 32, evalFraction: 0, checkpointEvery: 1 } });
  await startTraining(page, 'uninterrupted');
  await expectRunState(page, 'completed');

  // The same run again; the device is destroyed once step 2's loss is read, with step 3 on the GPU.
  const hook = await armHook(page, 'train:progress', 2, 'lose-device');
  await page.getByTestId('step-settings').click();
  await startTraining(page, 'device lost');
  await hook.reached;
  await expectRunState(page, 'paused');
  const panel = page.locator('[data-step="training"]');
  await expect(panel).toHaveAttribute('data-pause-reason', 'device-lost');
  await expect(page.getByTestId('training-error')).toContainText('Paused because the GPU device was lost:');
  testInfo.annotations.push({ type: 'notice', description: await page.getByTestId('training-error').innerText() });
  const checkpoint = Number(await page.getByTestId('run-step').getAttribute('data-value'));
  expect(checkpoint).toBeGreaterThanOrEqual(1);
  expect(checkpoint).toBeLessThan(3);

  // Resume asks for a new device (the old one is destroyed) and trains on from the checkpoint.
  await page.getByTestId('resume').click();
  await expect(panel).toHaveAttribute('data-resumed-from', String(checkpoint));
  await expect(panel).toHaveAttribute('data-first-step', String(checkpoint + 1));
  await expectRunState(page, 'completed');
  await expect(page.getByTestId('run-step')).toHaveText('3 / 3');

  // The same losses, to the last bit, as the run nothing interrupted: the resume restored the adapter and AdamW state exactly.
  const runs = await storeRecords<RunRow>(page, 'runs');
  const reference = losses(runs.find((r) => r.name === 'uninterrupted')!);
  const resumed = losses(runs.find((r) => r.name === 'device lost')!);
  expect(reference.map(([step]) => step)).toEqual([1, 2, 3]);
  expect(resumed).toEqual(reference);
  testInfo.annotations.push({ type: 'losses', description: JSON.stringify(resumed) });
  expect(errors).toEqual([]);
});

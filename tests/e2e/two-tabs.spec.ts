import path from 'node:path';
import { expect, test } from '@playwright/test';
import { expectRunState, storeRecords } from './faults';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

test('a second tab follows the run the first one trains, cannot train it too, and resumes it once the first tab is closed', async ({
  page: first,
  context,
}) => {
  test.setTimeout(20 * 60_000);
  await openApp(first);
  await loadLocalModel(first);
  await importDataset(first, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  // Sixty steps (24 stories, batch 8, twenty epochs) with a checkpoint after each: the first tab is still at it when it closes.
  await setSettings(first, { numbers: { batchSize: 8, epochs: 20, maxLength: 32, evalFraction: 0, checkpointEvery: 1 } });
  await startTraining(first, 'shared run');
  await expect(first.getByTestId('run-checkpoint')).toHaveAttribute('data-value', /^[1-9]/, { timeout: 15 * 60_000 });

  const second = await context.newPage();
  const errors = collectErrors(second);
  await openApp(second);
  await second.getByTestId('step-training').click();
  const [run] = await storeRecords<{ id: string; totalSteps: number }>(second, 'runs');
  const row = second.locator(`[data-run-id="${run.id}"]`);
  await expect(row).toHaveAttribute('data-elsewhere', 'true');
  const resume = row.getByTestId('resume-run');
  await expect(resume).toBeDisabled();
  await expect(resume).toHaveText('Training in another tab');

  // Live progress: the second tab sees the steps of the first as they come.
  const elsewhere = row.getByTestId('run-elsewhere');
  await expect(elsewhere).toContainText(/Training in another tab: step \d+ of 60, train loss \d/);
  const seen = Number(await elsewhere.getAttribute('data-step'));
  await expect(elsewhere).not.toHaveAttribute('data-step', String(seen), { timeout: 10 * 60_000 });
  expect(Number(await elsewhere.getAttribute('data-step'))).toBeGreaterThan(seen);

  // The engine itself refuses a second trainer on the run: its Web Lock is held by the first tab.
  await loadLocalModel(second);
  const refusal = await second.evaluate(
    (id) =>
      window.__webtuneTest!.engine.resumeRun(id).then(
        () => 'resumed',
        (error: Error) => error.message,
      ),
    run.id,
  );
  expect(refusal).toBe('The run "shared run" is training in another tab of webtune; follow it there, or close that tab to resume it here.');
  await second.getByTestId('step-training').click();
  await expect(resume).toBeDisabled();

  // Closing the first tab lets go of the lock: the second resumes the run from its latest checkpoint.
  await first.close();
  await expect(row).toHaveAttribute('data-elsewhere', 'false');
  await expect(resume).toBeEnabled();
  const label = await resume.innerText();
  const checkpoint = Number(/Resume from step (\d+)/.exec(label)?.[1]);
  expect(checkpoint).toBeGreaterThanOrEqual(1);
  expect(checkpoint).toBeLessThan(60);
  await resume.click();
  const panel = second.locator('[data-step="training"]');
  await expect(panel).toHaveAttribute('data-resumed-from', String(checkpoint));
  // It trains on here: the next step, then a pause at a checkpoint of this tab.
  await expect(panel).toHaveAttribute('data-first-step', String(checkpoint + 1));
  await second.getByTestId('pause').click();
  await expectRunState(second, 'paused');
  expect(Number(await second.getByTestId('run-step').getAttribute('data-value'))).toBeGreaterThan(checkpoint);
  expect(errors).toEqual([]);
});

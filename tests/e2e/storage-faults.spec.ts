import path from 'node:path';
import { expect, test } from '@playwright/test';
import { expectRunState, flipStoredBit, goldenPeftZip, storeKeys, storeRecords } from './faults';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

interface StoredCheckpoint {
  runId: string;
  step: number;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  checksums?: { params: string };
}

test('a full disk pauses the run saying what it needs, keeps everything, and it resumes with room; a damaged adapter is refused', async ({
  page,
}, testInfo) => {
  test.setTimeout(25 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);
  await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  await page.getByTestId('step-adapters').click();
  await page
    .getByTestId('adapter-import-files')
    .setInputFiles({ name: 'golden.zip', mimeType: 'application/zip', buffer: Buffer.from(goldenPeftZip()) });
  await expect(page.getByTestId('adapter-name')).toHaveText(['golden']);

  // Sixty short steps (24 stories, batch 8, twenty epochs) with a checkpoint after each; the disk fills long before the end.
  await setSettings(page, { numbers: { batchSize: 8, epochs: 20, maxLength: 32, evalFraction: 0, checkpointEvery: 1 } });
  await startTraining(page, 'full disk');
  await expect(page.getByTestId('run-checkpoint')).toHaveAttribute('data-value', /^[1-9]/, { timeout: 15 * 60_000 });

  // The origin's quota becomes what it uses now: no further write fits. Chromium's IndexedDB keeps
  // the space it last found free for about 30 s, so a few more checkpoints may still go in first.
  const [first] = await storeRecords<StoredCheckpoint>(page, 'checkpoints');
  const checkpointBytes = first.params.byteLength + first.m.byteLength + first.v.byteLength;
  const origin = new URL(page.url()).origin;
  const cdp = await page.context().newCDPSession(page);
  const { usage } = await cdp.send('Storage.getUsageAndQuota', { origin });
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: usage });

  await expectRunState(page, 'paused');
  const panel = page.locator('[data-step="training"]');
  await expect(panel).toHaveAttribute('data-pause-reason', 'storage-full');
  const notice = page.getByTestId('training-error');
  const lastSaved = Number(await page.getByTestId('run-step').getAttribute('data-value'));
  const failedAt = lastSaved + 1;
  await expect(notice).toContainText(`Paused at step ${lastSaved}, the last checkpoint saved.`);
  await expect(notice).toContainText(`Browser storage is full, so the checkpoint at step ${failedAt} of run "full disk" was not saved.`);
  await expect(notice).toContainText(`It needs about ${Number((checkpointBytes / 1000).toPrecision(3))} KB; this site uses`);
  await expect(notice).toContainText('Everything saved before is intact.');
  await page.screenshot({ path: testInfo.outputPath('paused-storage-full.png'), fullPage: true });
  testInfo.annotations.push({ type: 'notice', description: await notice.innerText() });

  // The checkpoints before it, the dataset and the adapter are all still there and intact.
  const runs = await storeRecords<{ id: string; lastCheckpointStep: number }>(page, 'runs');
  expect(runs.map((r) => r.lastCheckpointStep)).toEqual([lastSaved]);
  expect(await storeKeys(page, 'checkpoints')).toEqual([
    [runs[0].id, lastSaved - 1],
    [runs[0].id, lastSaved],
  ]);
  const checkpoints = await storeRecords<StoredCheckpoint>(page, 'checkpoints');
  expect(checkpoints.every((c) => /^[0-9a-f]{64}$/.test(c.checksums?.params ?? ''))).toBe(true);
  await page.getByTestId('step-data').click();
  await expect(page.getByTestId('dataset-item')).toContainText('24 rows');
  await page.getByTestId('step-adapters').click();
  await expect(page.getByTestId('adapter-name')).toHaveText(['golden']);

  // With room again, the run resumes from the last checkpoint that was written; it is stopped after a step, which saves its adapter.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  await page.getByTestId('step-training').click();
  await page.getByTestId('resume').click();
  await expect(panel).toHaveAttribute('data-resumed-from', String(lastSaved));
  await expect(panel).toHaveAttribute('data-first-step', String(failedAt));
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByTestId('stop').click();
  await expectRunState(page, 'stopped');

  // A bit flipped in the trained adapter's stored bytes: export and generation refuse it, naming it.
  await page.getByTestId('step-adapters').click();
  await expect(page.getByTestId('adapter-name')).toHaveText([/^full disk \(stopped at step \d+\)$/, 'golden']);
  const adapters = await storeRecords<{ id: string; name: string }>(page, 'adapters');
  const trained = adapters.find((a) => a.name.startsWith('full disk'))!;
  await flipStoredBit(page, 'adapters', trained.id, 'tensors.2.data');
  const damaged = new RegExp(
    'The adapter "full disk \\(stopped at step \\d+\\)" is damaged: the stored values of tensor .+ no longer match their checksum, ' +
      'so webtune will not use it',
  );
  await page.getByTestId('export-adapter').selectOption(trained.id);
  await page.getByTestId('export-download').click();
  await expect(page.getByTestId('export-error')).toHaveText(damaged);
  await page.locator(`[data-adapter-id="${trained.id}"]`).getByTestId('adapter-download').click();
  await expect(page.getByTestId('adapters-error')).toHaveText(damaged);
  await page.getByTestId('step-compare').click();
  await page.getByTestId('compare-adapter').selectOption(trained.id);
  await page.getByTestId('compare-prompt').fill('Once upon a time');
  await page.getByTestId('compare-max-tokens').fill('2');
  await page.getByTestId('compare-generate').click();
  await expect(page.getByTestId('compare-error')).toHaveText(damaged);
  // The other adapter is untouched and still exports.
  await page.getByTestId('step-adapters').click();
  await page.getByTestId('export-adapter').selectOption({ label: 'golden' });
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-download').click()]);
  expect(download.suggestedFilename()).toBe('golden.zip');
  expect(errors).toEqual([]);
});

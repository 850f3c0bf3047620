import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, type Page, test } from '@playwright/test';
import type { HookPoint } from '../../src/testing/hooks';
import { armHook, crashPage, expectRunState, storeKeys, storeRecords } from './faults';
import { collectErrors, DATA_DIR, importDataset, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

interface RunRow {
  id: string;
  name: string;
  lastCheckpointStep: number | null;
  status: string;
}

/** Three steps (24 stories, batch 8), a checkpoint after each: the third checkpoint's write is the one crashed. */
const SETTINGS = { numbers: { batchSize: 8, epochs: 1, maxLength: 32, evalFraction: 0, checkpointEvery: 1 } };

async function chooseTrainingData(page: Page): Promise<void> {
  await page.getByTestId('step-data').click();
  await page.getByTestId('train-dataset-select').selectOption({ index: 1 });
}

test('a crash while a checkpoint is written, at three moments of its transaction, leaves the last complete one, which resumes', async ({
  page: first,
  context,
}) => {
  test.setTimeout(25 * 60_000);
  let page = first;
  await openApp(page);
  await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  const moments: HookPoint[] = ['checkpoint:after-put', 'checkpoint:after-prune', 'checkpoint:before-commit'];
  for (const [i, moment] of moments.entries()) {
    await test.step(`crash at ${moment}`, async () => {
      await loadLocalModel(page);
      await chooseTrainingData(page);
      await setSettings(page, SETTINGS);
      const hook = await armHook(page, moment, 3, 'hold');
      await startTraining(page, `crash ${i + 1}`);
      await hook.reached;
      await crashPage(page);

      page = await context.newPage();
      await openApp(page);
      const runs = await storeRecords<RunRow>(page, 'runs');
      const run = runs.find((r) => r.name === `crash ${i + 1}`)!;
      // The transaction never committed: checkpoints 1 and 2 are there, whole, and the run still names step 2.
      expect(run).toMatchObject({ status: 'running', lastCheckpointStep: 2 });
      expect((await storeKeys(page, 'checkpoints')).filter((k) => (k as [string, number])[0] === run.id)).toEqual([
        [run.id, 1],
        [run.id, 2],
      ]);
      await page.getByTestId('step-training').click();
      await expect(page.locator(`[data-run-id="${run.id}"]`).getByTestId('resume-run')).toHaveText('Resume from step 2');
    });
  }

  await test.step('the last run resumes from its checkpoint at step 2 and finishes', async () => {
    const errors = collectErrors(page);
    await loadLocalModel(page);
    await page.getByTestId('step-training').click();
    const runs = await storeRecords<RunRow>(page, 'runs');
    const last = runs.find((r) => r.name === 'crash 3')!;
    await page.locator(`[data-run-id="${last.id}"]`).getByTestId('resume-run').click();
    const panel = page.locator('[data-step="training"]');
    await expect(panel).toHaveAttribute('data-resumed-from', '2');
    await expectRunState(page, 'completed');
    await expect(page.getByTestId('run-step')).toHaveText('3 / 3');
    expect(errors).toEqual([]);
  });
});

test('a crash while a dataset import is written, between or inside its transactions, leaves no trace of it', async ({
  page: first,
  context,
}) => {
  test.setTimeout(10 * 60_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'webtune-crash-'));
  try {
    // About 13 MB of rows: four chunks of at most 4 Mi characters.
    const rows: string[] = [];
    for (let i = 0; i < 13_000; i++) rows.push(JSON.stringify({ text: `story ${i}: ${'Zog flew over the hills. '.repeat(40)}` }));
    const file = path.join(dir, 'big.jsonl');
    await writeFile(file, `${rows.join('\n')}\n`);

    let page = first;
    await openApp(page);
    await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
    const survivors = await storeRecords<{ id: string; rowCount: number }>(page, 'datasets');
    const moments: { point: HookPoint | 'preview'; at: number }[] = [
      { point: 'import:after-chunk', at: 1 },
      { point: 'import:inside-chunk', at: 3 },
      { point: 'preview', at: 0 },
      { point: 'import:inside-commit', at: 4 },
    ];
    for (const { point, at } of moments) {
      await test.step(`crash at ${point} ${at}`, async () => {
        await page.getByTestId('step-data').click();
        if (point === 'preview' || point === 'import:inside-commit') {
          await page.getByTestId('dataset-file-train').setInputFiles(file);
          await expect(page.getByTestId('preview-valid')).toHaveAttribute('data-count', '13000');
          // Every chunk is written, under a pending import; the dataset does not exist yet.
          expect(await storeKeys(page, 'datasetChunks')).toHaveLength(survivors.length + 4);
          if (point === 'import:inside-commit') {
            const hook = await armHook(page, point, at, 'hold');
            await page.getByTestId('import-confirm').click();
            await hook.reached;
          }
        } else {
          const hook = await armHook(page, point, at, 'hold');
          await page.getByTestId('dataset-file-train').setInputFiles(file);
          await hook.reached;
        }
        await crashPage(page);

        page = await context.newPage();
        await openApp(page);
        // The next start removed what the crashed tab left: only the dataset stored before is there, whole.
        expect(await storeRecords(page, 'pendingImports')).toEqual([]);
        expect((await storeKeys(page, 'datasetChunks')).map((k) => (k as [string, number])[0])).toEqual(survivors.map((d) => d.id));
        expect((await storeRecords<{ id: string; rowCount: number }>(page, 'datasets')).map((d) => [d.id, d.rowCount])).toEqual(
          survivors.map((d) => [d.id, d.rowCount]),
        );
        await page.getByTestId('step-data').click();
        await expect(page.getByTestId('dataset-item')).toHaveCount(1);
        await expect(page.getByTestId('dataset-item')).toContainText('24 rows');
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

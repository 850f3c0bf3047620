import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { storeKeys, storeRecords } from './faults';
import { collectErrors, openApp } from './helpers';
import { busiestPageTask, expectResponsive, watchMainThread, workerHeap } from './main-thread';

const ROWS = 200_000;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** 200,000 rows of about 1,000 characters: a 200 MB JSONL file, written here, never committed. */
async function writeBigJsonl(file: string): Promise<void> {
  const out = createWriteStream(file);
  const filler = 'Zog the little dragon flew over the green hills and found a friend. ';
  for (let i = 0; i < ROWS; i++) {
    const line = `${JSON.stringify({ text: `Story ${i}. ${filler.repeat(15)}` })}\n`;
    if (!out.write(line)) await new Promise((resolve) => out.once('drain', resolve));
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

test('a 200 MB, 200,000-row JSONL file streams in with progress, the page responsive, the heap bounded; cancelled, nothing stays', async ({
  page,
  browser,
}, testInfo) => {
  test.setTimeout(15 * 60_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'webtune-big-'));
  try {
    const file = path.join(dir, 'big.jsonl');
    await writeBigJsonl(file);
    const size = (await stat(file)).size;
    expect(size).toBeGreaterThan(200e6);
    const errors = collectErrors(page);
    await openApp(page);
    await page.getByTestId('step-data').click();
    const heap = await workerHeap(browser);
    const heapBefore = await heap.usedBytes(true);

    await test.step('cancelled halfway: nothing stored', async () => {
      await page.getByTestId('dataset-file-train').setInputFiles(file);
      const progress = page.getByTestId('import-progress');
      await expect(progress).toBeVisible();
      await expect.poll(async () => Number(await progress.getAttribute('data-bytes')), { timeout: 5 * 60_000 }).toBeGreaterThan(size / 4);
      await page.getByTestId('import-progress-cancel').click();
      await expect(page.getByTestId('data-error')).toHaveText('The import of big.jsonl was cancelled; nothing of it is stored.');
      await expect(progress).toBeHidden();
      await expect(page.getByTestId('import-preview')).toBeHidden();
      expect(await storeKeys(page, 'datasetChunks')).toEqual([]);
      expect(await storeRecords(page, 'pendingImports')).toEqual([]);
      expect(await storeRecords(page, 'datasets')).toEqual([]);
    });

    await test.step('read whole: a progress bar, no main-thread task over 100 ms of CPU, the heap bounded, stored in chunks', async () => {
      const stop = await watchMainThread(page, browser);
      let peak = 0;
      const samples: number[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const used = await heap.usedBytes();
          samples.push(used);
          peak = Math.max(peak, used);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })();
      const started = Date.now();
      await page.getByTestId('dataset-file-eval').setInputFiles(file);
      const progress = page.getByTestId('import-progress');
      const seen = new Set<string>();
      while (!(await page.getByTestId('import-preview').isVisible())) {
        const bytes = await progress.getAttribute('data-bytes').catch(() => null);
        if (bytes) seen.add(bytes);
        await page.waitForTimeout(500);
      }
      const ms = Date.now() - started;
      sampling = false;
      await sampler;
      const report = await stop();
      await expect(page.getByTestId('preview-valid')).toHaveAttribute('data-count', String(ROWS));
      await expect(page.getByTestId('preview-invalid')).toHaveAttribute('data-count', '0');
      // The bar moved through the file: several distinct positions were shown while it was read.
      expect(seen.size).toBeGreaterThan(3);
      // The test's own Playwright calls are evaluated on the main thread too; only the page's tasks count.
      const busiest = busiestPageTask(report);
      const harness = Math.max(0, ...report.tasks.filter((t) => t.harness).map((t) => t.cpuMs));
      const longList = report.longTasks.map((d) => d.toFixed(0)).join(', ');
      testInfo.annotations.push({
        type: 'figures',
        description:
          `${(size / 1e6).toFixed(1)} MB, ${ROWS} rows read in ${(ms / 1000).toFixed(1)} s; worker heap ` +
          `${mib(heapBefore)} MiB before, peak ${mib(peak)} MiB over ${samples.length} samples; ` +
          `${report.longTasks.length} main-thread long tasks over 50 ms (${longList || 'none'}), ` +
          `the busiest task ${busiest.toFixed(1)} ms of CPU (the test's own evaluations: at most ${harness.toFixed(1)} ms)`,
      });
      expectResponsive(report);
      // Reading the file whole would hold its 200 MB as one string, then again as lines; streamed, the heap stays far below the file.
      expect(peak - heapBefore).toBeLessThan(128 * 2 ** 20);
      const chunks = await storeKeys(page, 'datasetChunks');
      expect(chunks.length).toBeGreaterThan(40);
      expect(await storeRecords(page, 'datasets')).toEqual([]);

      await page.getByTestId('import-confirm').click();
      await expect(page.getByTestId('dataset-item')).toHaveCount(1);
      await expect(page.getByTestId('dataset-item')).toContainText('200,000 rows');
      expect(await storeRecords(page, 'pendingImports')).toEqual([]);
    });
    await heap.close();
    expect(errors).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

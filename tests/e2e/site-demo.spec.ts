import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { type Browser, expect, type Page, test } from '@playwright/test';
import { collectErrors } from './helpers';
import { serveStatic } from './static-server';

/** The build Playwright's webServer made (`npx vite build`): relative URLs, so it works under any sub-path. */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');
const PREFIX = '/webtune/';

async function runDemo(page: Page): Promise<{ base: string; adapted: string }> {
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  await expect(page.locator('body')).toHaveAttribute('data-webgpu', 'ready');
  await page.getByRole('button', { name: 'Try the demo', exact: true }).click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'completed', { timeout: 20 * 60_000 });
  await expect(page.getByTestId('compare-adapted')).toHaveAttribute('data-state', 'done', { timeout: 5 * 60_000 });
  await expect(page.getByTestId('demo-status')).toHaveText('Done: the adapted model now tells stories about Zog.');
  return {
    base: (await page.getByTestId('compare-base').getByTestId('continuation').textContent()) ?? '',
    adapted: (await page.getByTestId('compare-adapted').getByTestId('continuation').textContent()) ?? '',
  };
}

/** Evaluates the demo adapter, then downloads the report and the chart and opens the report from a file: URL, offline. */
async function checkReport(page: Page, browser: Browser, outputPath: (name: string) => string): Promise<void> {
  await page.getByTestId('step-training').click();
  const chart = page.locator('[data-step="training"]').getByTestId('loss-chart');
  await expect(chart).toHaveAttribute('data-train-points', '24');
  await chart.locator('.u-over').hover();
  const legend = chart.locator('.u-legend .u-series');
  await expect(legend.nth(2)).toContainText('train loss (smoothed)');
  await expect(legend.nth(2).locator('.u-value')).toHaveText(/^\d+\.\d{4}$/);
  await chart.getByTestId('chart-log').check();
  await expect(chart).toHaveAttribute('data-scale', 'log');
  await chart.getByTestId('chart-smoothing').fill('0');
  await expect(legend.nth(2)).toContainText('train loss');
  await expect(legend.nth(2)).not.toContainText('smoothed');
  await page.screenshot({ path: outputPath('chart-log.png'), fullPage: true });

  await page.getByTestId('step-evaluate').click();
  const select = page.getByTestId('eval-dataset');
  await select.selectOption((await select.locator('option', { hasText: 'zog stories eval (' }).getAttribute('value'))!);
  await page.getByTestId('eval-run').click();
  await expect(page.locator('[data-step="evaluate"]')).toHaveAttribute('data-state', 'done', { timeout: 10 * 60_000 });
  const loss = (side: string) =>
    page.locator(`[data-testid="eval-metric"][data-metric="loss"] [data-testid="${side}"]`).getAttribute('data-value');
  const [before, after] = [Number(await loss('before')), Number(await loss('after'))];
  expect(after).toBeLessThan(before);

  await page.getByTestId('step-compare').click();
  const reportFile = outputPath('report.html');
  const chartFile = outputPath('loss.png');
  const html = page.waitForEvent('download');
  await page.locator('[data-step="compare"]').getByTestId('download-report').click();
  await (await html).saveAs(reportFile);
  const png = page.waitForEvent('download');
  await page.locator('[data-step="compare"]').getByTestId('download-chart').click();
  await (await png).saveAs(chartFile);
  expect([...readFileSync(chartFile).subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

  const offline = await browser.newContext({ offline: true });
  const requests: string[] = [];
  offline.on('request', (request) => requests.push(request.url()));
  const reader = await offline.newPage();
  const fileUrl = `file://${reportFile}`;
  await reader.goto(fileUrl);
  await expect(reader.getByTestId('report-title')).toHaveText('Zog demo');
  const reportChart = reader.getByTestId('report-chart');
  await expect.poll(() => reportChart.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(900);
  const figures = reader.getByTestId('report-figures');
  await expect(figures).toContainText('24 of 24 (completed)');
  const finalEval = Number(await page.locator('[data-step="training"]').getByTestId('eval-loss').getAttribute('data-value'));
  await expect(figures).toContainText(finalEval.toFixed(4));
  const evaluation = reader.getByTestId('report-evaluation');
  await expect(evaluation).toContainText(before.toFixed(4));
  await expect(evaluation).toContainText(after.toFixed(4));
  await expect(reader.getByTestId('report-settings')).toContainText('r 8, alpha 16');
  await expect(reader.getByTestId('report-adapted')).toContainText('dragon named Zog');
  expect(await reader.getByTestId('report-points').locator('tbody tr').count()).toBeGreaterThanOrEqual(25);
  await reader.screenshot({ path: outputPath('report.png'), fullPage: true });
  expect(requests.filter((url) => url !== fileUrl && !url.startsWith('data:'))).toEqual([]);
  await offline.close();
}

test('the built site under a sub-path of a plain static server: the demo trains, then runs again offline', async ({
  page,
  context,
  browser,
}, testInfo) => {
  test.setTimeout(45 * 60_000);
  const site = await serveStatic(DIST, PREFIX);
  const errors = collectErrors(page);
  // On the context, which also sees the requests of the page's worker and service worker.
  const requests: string[] = [];
  context.on('request', (request) => requests.push(request.url()));
  try {
    await page.goto(site.url);
    await expect(page.getByRole('button', { name: 'Try the demo', exact: true })).toBeVisible();
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    expect(scope).toBe(site.url);
    // Installable: a manifest whose start URL and icons resolve under the sub-path.
    const manifest = await page.evaluate(async () => {
      const href = document.querySelector<HTMLLinkElement>('link[rel="manifest"]')!.href;
      const json = (await (await fetch(href)).json()) as { start_url: string; icons: { src: string }[] };
      const icons = await Promise.all(json.icons.map(async (i) => (await fetch(new URL(i.src, href))).status));
      return { start: new URL(json.start_url, href).href, icons };
    });
    expect(manifest).toEqual({ start: site.url, icons: [200, 200] });

    const started = Date.now();
    const first = await runDemo(page);
    testInfo.annotations.push({ type: 'demo online', description: `${((Date.now() - started) / 1000).toFixed(0)} s: ${first.adapted}` });
    await page.screenshot({ path: testInfo.outputPath('demo-compare.png'), fullPage: true });
    expect(first.base).toContain('girl named Lily');
    expect(first.base).not.toContain('Zog');
    expect(first.adapted).toContain('dragon named Zog');
    await expect(page.getByTestId('run-step')).toHaveText('24 / 24');
    const outside = requests.filter((url) => !/^(blob|data):/.test(url) && new URL(url).origin !== site.origin);
    expect(outside).toEqual([]);
    expect(requests).toContain(`${site.url}demo/stories260K/model.safetensors`);
    await checkReport(page, browser, (name) => testInfo.outputPath(name));

    // The network cut: the server is gone and the browser is offline; the service worker and IndexedDB remain.
    await site.close();
    await context.setOffline(true);
    await page.reload();
    const again = Date.now();
    const second = await runDemo(page);
    testInfo.annotations.push({ type: 'demo offline', description: `${((Date.now() - again) / 1000).toFixed(0)} s: ${second.adapted}` });
    expect(second.adapted).toContain('dragon named Zog');
    await expect(page.getByTestId('dataset-item')).toHaveCount(2);
  } finally {
    await context.setOffline(false);
    await site.close().catch(() => undefined);
  }
  expect(errors).toEqual([]);
});

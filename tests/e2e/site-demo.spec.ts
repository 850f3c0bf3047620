import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, type Page, test } from '@playwright/test';
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
    base: await page.getByTestId('compare-base').getByTestId('continuation').innerText(),
    adapted: await page.getByTestId('compare-adapted').getByTestId('continuation').innerText(),
  };
}

test('the built site under a sub-path of a plain static server: the demo trains, then runs again offline', async ({
  page,
  context,
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

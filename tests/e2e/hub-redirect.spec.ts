import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, expect, test } from '@playwright/test';
import { generate } from 'selfsigned';
import { hubTree, type RepoFiles } from '../helpers/hub-repo';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium';
import { collectErrors, MODEL_DIR, openApp } from './helpers';

const REPO = 'webtune-test/stories260K';
/** The Hub's own host and the CDN hosts its `resolve` answers redirect to: one allowed by the site's policy, one not. */
const HOSTS = ['huggingface.co', 'cas-bridge.xethub.hf.co', 'cdn.example.net'];

/** The model folder's files, as the fake Hub's repository holds them. */
function modelFiles(): RepoFiles {
  return new Map(readdirSync(MODEL_DIR).map((name) => [name, new Uint8Array(readFileSync(path.join(MODEL_DIR, name)))]));
}

/**
 * A fake Hub over real HTTPS (a self-signed certificate made here), answering every host above on
 * one port, as the real one answers: the file list from the API, `resolve` gives a 302 to a CDN host, which serves the bytes;
 * both with `Access-Control-Allow-Origin: *`. Playwright's route.fulfill cannot redirect across
 * origins, so this is the browser's own network stack following a real redirect.
 */
async function fakeHub(cdnFor: (file: string) => string) {
  const { private: key, cert } = await generate([{ name: 'commonName', value: 'huggingface.co' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: HOSTS.map((value) => ({ type: 2 as const, value })) }],
  });
  const log: string[] = [];
  const server = createServer({ key, cert }, (request: IncomingMessage, response: ServerResponse) => {
    const host = request.headers.host?.replace(/:\d+$/, '') ?? '';
    const url = new URL(request.url ?? '/', `https://${host}`);
    log.push(`${request.method} ${url.href}`);
    const cors = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length' };
    // The file list the page checks every download against (sizes, sha256), answered by the Hub itself.
    if (host === 'huggingface.co' && /^\/api\/models\/webtune-test\/[^/]+\/tree\/main$/.test(url.pathname)) {
      return response.writeHead(200, { ...cors, 'content-type': 'application/json' }).end(JSON.stringify(hubTree(modelFiles())));
    }
    const resolve = /^\/webtune-test\/[^/]+\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (host === 'huggingface.co' && resolve) {
      const file = resolve[1];
      if (!existsSync(path.join(MODEL_DIR, file))) return response.writeHead(404, cors).end('Entry not found');
      return response.writeHead(302, { ...cors, location: `${cdnFor(file)}/xet-bridge-us/${file}?X-Amz-Signature=abc` }).end();
    }
    const served = /^\/xet-bridge-us\/(.+)$/.exec(url.pathname);
    if (host !== 'huggingface.co' && served && existsSync(path.join(MODEL_DIR, served[1]))) {
      const body = readFileSync(path.join(MODEL_DIR, served[1]));
      return response.writeHead(200, { ...cors, 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
    }
    response.writeHead(404, cors).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { port, log, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('a Hub model downloads through the real 302 to its CDN host under the site policy; a redirect to another host is blocked', async ({
  baseURL,
}) => {
  test.setTimeout(5 * 60_000);
  let cdn = 'https://cas-bridge.xethub.hf.co';
  const hub = await fakeHub(() => cdn);
  const rules = HOSTS.map((host) => `MAP ${host}:443 127.0.0.1:${hub.port}`).join(', ');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, `--host-resolver-rules=${rules}`, '--ignore-certificate-errors'],
  });
  try {
    const context = await browser.newContext({ baseURL, ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await openApp(page);
    await page.getByTestId('hub-id').fill(REPO);
    await page.getByTestId('hub-load').click();
    await expect(page.getByTestId('model-name')).toHaveText(REPO);
    await expect(page.getByTestId('model-architecture')).toHaveText('llama');
    // Every file went through its redirect: the Hub's 302, then the CDN host.
    for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
      expect(hub.log).toContain(`GET https://huggingface.co/${REPO}/resolve/main/${file}`);
      expect(hub.log).toContain(`GET https://cas-bridge.xethub.hf.co/xet-bridge-us/${file}?X-Amz-Signature=abc`);
    }
    expect(errors).toEqual([]);

    // A redirect to a host the policy does not name is not followed: the download fails, saying so, and nothing is fetched there.
    cdn = 'https://cdn.example.net';
    const before = hub.log.length;
    await page.getByTestId('hub-id').fill('webtune-test/elsewhere');
    await page.getByTestId('hub-load').click();
    await expect(page.getByTestId('model-error')).toContainText(
      'huggingface.co redirected config.json to a host this site may not connect to: its Content-Security-Policy allows only',
    );
    expect(hub.log.slice(before)).toEqual([
      'GET https://huggingface.co/api/models/webtune-test/elsewhere/tree/main',
      'GET https://huggingface.co/webtune-test/elsewhere/resolve/main/config.json',
    ]);
  } finally {
    await browser.close();
    await hub.close();
  }
});

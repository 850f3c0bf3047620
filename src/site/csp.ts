/**
 * The built site's Content-Security-Policy, sent as a `<meta http-equiv>` tag in index.html (a
 * static host sends no headers of ours; vite.config.ts writes the tag). Scripts and workers come
 * only from the site itself, and the page (and its engine worker, which the page starts from a
 * blob: URL so that it inherits this policy: src/worker/client.ts) connects only to the site and
 * to the Hugging Face hosts webtune downloads from:
 *
 * - `huggingface.co`: model files (`/<repo>/resolve/main/…`), the file list (`/api/models/…/tree`),
 *   dataset files, and the Parquet files the dataset viewer made (`refs%2Fconvert%2Fparquet`);
 * - `*.huggingface.co`: `datasets-server.huggingface.co` (the list of a dataset's Parquet files),
 *   and the CDN hosts `resolve` redirects large files to (`cdn-lfs.huggingface.co`,
 *   `cdn-lfs-us-1.huggingface.co`);
 * - `*.hf.co`: the other redirect targets (`cas-bridge.xethub.hf.co` for Xet storage,
 *   `cdn-lfs.hf.co`).
 *
 * A request to any other origin is blocked by the browser; a dataset or model URL on another host
 * is refused before any request, with the reason (`connectRefusal`). A deployment that serves its
 * data from another host adds it at build time: `WEBTUNE_CONNECT_SRC="https://data.example.org" npm run build`.
 */

export const HUB_CONNECT_SOURCES = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'];

/** The policy, for the hosts in `connect` besides the site itself. */
export function contentSecurityPolicy(connect: readonly string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    // blob: only for the engine's worker, whose one line imports the bundled worker from 'self'.
    "worker-src 'self' blob:",
    `connect-src 'self' ${connect.join(' ')}`,
    // data: for the favicon and the loss chart's PNG; blob: for images of downloads.
    "img-src 'self' data: blob:",
    "style-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'none'",
  ].join('; ');
}

/** The connect sources of a build: the Hub's and those the environment adds (space or comma separated). */
export function connectSources(extra: string | undefined): string[] {
  const added = (extra ?? '').split(/[\s,]+/).filter(Boolean);
  for (const source of added) {
    if (!/^https:\/\/(\*\.)?[a-z0-9.-]+(:\d+)?$/i.test(source)) {
      throw new Error(`WEBTUNE_CONNECT_SRC: "${source}" is not an https origin such as https://data.example.org or https://*.example.org`);
    }
  }
  return [...HUB_CONNECT_SOURCES, ...added];
}

declare const __WEBTUNE_CONNECT_SRC__: readonly string[] | null | undefined;

/** The built page's connect sources; null where no policy applies (Node, the unit tests, Vite's dev server). */
const BUILT_CONNECT: readonly string[] | null = typeof __WEBTUNE_CONNECT_SRC__ === 'undefined' ? null : __WEBTUNE_CONNECT_SRC__;

function allows(source: string, url: URL): boolean {
  const { protocol, host } = new URL(source.replace('*.', 'wildcard.'));
  if (url.protocol !== protocol) return false;
  return source.includes('*.') ? url.host.endsWith(host.slice('wildcard'.length)) : url.host === host;
}

/**
 * Why the page may not fetch `url`, or null when it may: its own origin and the connect sources
 * are allowed. `what` names the download in the message.
 */
export function connectRefusal(url: URL, pageOrigin: string, what: string, connect = BUILT_CONNECT): string | null {
  if (connect === null || url.origin === pageOrigin || connect.some((source) => allows(source, url))) return null;
  return (
    `${url.host} is not a host this site may connect to: its Content-Security-Policy allows only this site and ` +
    `${connect.map((s) => s.replace('https://', '')).join(', ')}. Put the ${what} on the Hugging Face Hub or beside the site, ` +
    'or download it and pick it as a file.'
  );
}

/** When this context's policy last blocked a connection (its securitypolicyviolation event), to explain a failed fetch. */
let lastBlockedAt = Number.NEGATIVE_INFINITY;
if (typeof globalThis.addEventListener === 'function' && typeof SecurityPolicyViolationEvent !== 'undefined') {
  globalThis.addEventListener('securitypolicyviolation', (event) => {
    if ((event as SecurityPolicyViolationEvent).effectiveDirective === 'connect-src') lastBlockedAt = performance.now();
  });
}

/**
 * Whether the policy blocked a connection since `since` (performance.now()). A fetch the policy
 * refuses, also midway through a redirect, fails like a network error, and the violation event
 * that says why comes as a task of its own, so this waits for it briefly. The event names the URL
 * first asked for, never where a redirect led (browsers hide that), so callers can only say that
 * a redirect went somewhere the policy does not allow.
 */
export async function blockedSince(since: number): Promise<boolean> {
  for (let i = 0; i < 5 && lastBlockedAt < since; i++) await new Promise((r) => setTimeout(r, 10));
  return lastBlockedAt >= since;
}

/** What to say when `host`, a host the policy allows, answered a request for `what` with a redirect the policy blocked. */
export function redirectRefusal(host: string, what: string, connect = BUILT_CONNECT ?? HUB_CONNECT_SOURCES): string {
  return (
    `${host} redirected ${what} to a host this site may not connect to: its Content-Security-Policy allows only this site and ` +
    `${connect.map((s) => s.replace('https://', '')).join(', ')}.`
  );
}

/**
 * The site's service worker: after the first visit the app shell and the demo files come from the
 * Cache API, so the page opens and the demo runs offline. `PRECACHE` and `VERSION` are written in
 * by the build (scripts/service-worker-plugin.ts): every file of the build, relative to this
 * script, and a hash of their contents. Hub models and datasets from URLs never pass through here:
 * the engine caches those in IndexedDB, and requests this worker does not know go to the network
 * untouched (no respondWith), so nothing but the site's own files is ever answered from this cache.
 *
 * A new build has a new VERSION, so the browser installs it beside the old one; it takes over once
 * no tab uses the old one (no skipWaiting), so a running page never loses the files it was built with.
 */
/// <reference lib="webworker" />

declare const PRECACHE: string[];
declare const VERSION: string;

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = `webtune-${VERSION}`;
/** Precached URLs, absolute, without query or fragment. */
const known = new Set(PRECACHE.map((path) => new URL(path, sw.location.href).href));
const shell = new URL('./', sw.location.href).href;
const indexHtml = new URL('index.html', sw.location.href).href;

sw.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll([...known])));
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key.startsWith('webtune-') && key !== CACHE) await caches.delete(key);
      // The first visit's page is controlled at once, so its demo files are answered from the cache too.
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  url.hash = '';
  url.search = '';
  const navigation = request.mode === 'navigate' && (url.href === shell || url.href === indexHtml);
  if (!navigation && !known.has(url.href)) return;
  const key = navigation ? indexHtml : url.href;
  event.respondWith(
    (async () => {
      const cached = await caches.match(key, { cacheName: CACHE });
      return cached ?? fetch(request);
    })(),
  );
});

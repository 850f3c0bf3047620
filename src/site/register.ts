/**
 * Registers the built site's service worker (src/site/service-worker.ts), which makes the app shell
 * and the demo available offline. Only in a production build: the dev server serves modules that
 * change on every edit, which a cache must not pin.
 */
export function registerServiceWorker(): void {
  if (!import.meta.env.PROD || !('serviceWorker' in navigator)) return;
  // Relative to the page, so a site under a sub-path registers its own worker with its own scope.
  navigator.serviceWorker.register('./sw.js').catch((error) => console.warn(`Offline use is not available: ${error}`));
}

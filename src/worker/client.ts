/**
 * The page's handle on the engine in its Web Worker, typed exactly as `WebtuneEngineApi`. Every call
 * crosses to the worker, so the page never waits on the GPU. A function cannot be structured-cloned,
 * so this handle wraps every function argument (the progress callbacks) in `Comlink.proxy` itself:
 * callers pass plain functions, as they would to the engine in the same thread.
 */
import * as Comlink from 'comlink';
import type { WebtuneEngineApi } from '../app/api';
import workerUrl from './worker.ts?worker&url';

/**
 * The engine's worker. A worker loaded from a URL takes its Content-Security-Policy from its own
 * response headers, which a static host does not send, so it would be free of the page's policy;
 * a worker started from a blob: URL inherits the page's. So the worker is a one-line module on a
 * blob: URL that imports the bundled worker (a script of the site itself), and every request the
 * engine makes is held to the page's connect-src (src/site/csp.ts).
 */
export function startEngine(): WebtuneEngineApi {
  const entry = new URL(workerUrl, import.meta.url).href;
  const source = URL.createObjectURL(new Blob([`import ${JSON.stringify(entry)};\n`], { type: 'text/javascript' }));
  const worker = new Worker(source, { type: 'module', name: 'webtune-engine' });
  return engineOver(worker);
}

type RemoteMethods = Record<string, (...args: unknown[]) => Promise<unknown>>;

/**
 * The engine exposed with `Comlink.expose` at the other end of `endpoint` (a Worker, or a MessagePort
 * in tests). Only direct function arguments are proxied: the engine API takes no callback inside an object.
 */
export function engineOver(endpoint: Comlink.Endpoint): WebtuneEngineApi {
  const remote = Comlink.wrap<WebtuneEngineApi>(endpoint) as unknown as RemoteMethods;
  const proxied = (arg: unknown) => (typeof arg === 'function' ? Comlink.proxy(arg) : arg);
  return new Proxy({} as WebtuneEngineApi, {
    // No `then`: the handle is not a promise, so it can be returned from an async function as it is.
    get: (_, method) =>
      typeof method !== 'string' || method === 'then' ? undefined : (...args: unknown[]) => remote[method](...args.map(proxied)),
  });
}

/**
 * The page's handle on the engine in its Web Worker. Every call crosses to the worker, so the page
 * never waits on the GPU; callbacks are passed as comlink proxies.
 */
import * as Comlink from 'comlink';
import type {
  EvaluateRequest,
  EvaluationProgress,
  HubProgress,
  ProgressiveEvent,
  ProgressiveRunRequest,
  RunEvent,
  RunRequest,
  WebtuneEngineApi,
} from '../app/api';

export type EngineClient = Comlink.Remote<WebtuneEngineApi>;

export function startEngine(): EngineClient {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'webtune-engine' });
  return Comlink.wrap<WebtuneEngineApi>(worker);
}

export function startRun(engine: EngineClient, request: RunRequest, onEvent: (event: RunEvent) => void) {
  return engine.startRun(request, Comlink.proxy(onEvent));
}

export function resumeRun(engine: EngineClient, runId: string, onEvent: (event: RunEvent) => void) {
  return engine.resumeRun(runId, Comlink.proxy(onEvent));
}

export function loadHubModel(engine: EngineClient, repoId: string, onProgress: (progress: HubProgress) => void) {
  return engine.loadHubModel(repoId, Comlink.proxy(onProgress));
}

export function loadLocalModel(engine: EngineClient, files: { path: string; file: File }[], name: string, onProgress: (message: string) => void) {
  return engine.loadLocalModel(files, name, Comlink.proxy(onProgress));
}

export function evaluate(engine: EngineClient, request: EvaluateRequest, onProgress: (progress: EvaluationProgress) => void) {
  return engine.evaluate(request, Comlink.proxy(onProgress));
}

export function startProgressiveRun(engine: EngineClient, request: ProgressiveRunRequest, onEvent: (event: ProgressiveEvent) => void) {
  return engine.startProgressiveRun(request, Comlink.proxy(onEvent));
}

/**
 * The fault hooks as methods of the engine in the e2e build (src/worker/worker.ts adds them only
 * when TEST_HOOKS is true): the page exposes the engine handle as `window.__webtuneTest.engine`,
 * so a test calls `testArm(point, at, action)` and awaits `testReached(point)`.
 */
import { arm, type HookAction, type HookPoint, reached } from './hooks';

export const testHooksApi = {
  async testArm(point: HookPoint, at: number, action: HookAction): Promise<void> {
    arm(point, at, action);
  },
  testReached(point: HookPoint): Promise<void> {
    return reached(point);
  },
  /** A request from the engine's worker: 'ok <status>', or the error it failed with (a policy's refusal among them). */
  async testFetch(url: string): Promise<string> {
    try {
      return `ok ${(await fetch(url)).status}`;
    } catch (error) {
      return `failed: ${(error as Error).message}`;
    }
  },
};

export type TestHooksApi = typeof testHooksApi;

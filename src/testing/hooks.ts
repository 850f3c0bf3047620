/**
 * Fault hooks for the end-to-end tests, present only in the e2e build (`vite build --mode e2e`,
 * which defines __WEBTUNE_TEST_HOOKS__ as true; see vite.config.ts). Everywhere else TEST_HOOKS is
 * the constant false, so each `if (TEST_HOOKS && …)` block and this module's code are dropped from
 * the production bundle (tests/e2e/csp.spec.ts checks the built files for them).
 *
 * A test arms a point (`arm('checkpoint:after-put', 3, 'hold')`) through the worker; when the
 * engine reaches it, `hold` stops there for good (inside a transaction, it keeps the transaction
 * open with requests, so the page can be crashed with the write half done) and `lose-device`
 * destroys the GPU device. `reached` tells the test that the point was hit.
 */

declare const __WEBTUNE_TEST_HOOKS__: boolean | undefined;

export const TEST_HOOKS: boolean = typeof __WEBTUNE_TEST_HOOKS__ !== 'undefined' && __WEBTUNE_TEST_HOOKS__;

export type HookPoint =
  /** Inside the checkpoint's transaction: the new checkpoint put, the old ones not yet pruned. */
  | 'checkpoint:after-put'
  /** Inside it: older checkpoints deleted, the run not yet updated. */
  | 'checkpoint:after-prune'
  /** Inside it: every request made, the transaction not yet committed. */
  | 'checkpoint:before-commit'
  /** Between transactions of a streamed import: `at` chunks written. */
  | 'import:after-chunk'
  /** Inside the transaction of chunk `at`. */
  | 'import:inside-chunk'
  /** Inside the commit marker's transaction. */
  | 'import:inside-commit'
  /** A training step's loss was read (the next step is on the GPU). */
  | 'train:progress';

export type HookAction = 'hold' | 'lose-device';

interface Armed {
  point: HookPoint;
  at: number;
  action: HookAction;
}

let armed: Armed | null = null;
const reachedPoints = new Map<HookPoint, () => void>();
const reachedPromises = new Map<HookPoint, Promise<void>>();

function reachedPromise(point: HookPoint): Promise<void> {
  let promise = reachedPromises.get(point);
  if (!promise) {
    promise = new Promise<void>((resolve) => reachedPoints.set(point, resolve));
    reachedPromises.set(point, promise);
  }
  return promise;
}

export function arm(point: HookPoint, at: number, action: HookAction): void {
  armed = { point, at, action };
  reachedPromises.delete(point);
  reachedPromise(point);
}

/** Resolves once the armed point has been hit. */
export function reached(point: HookPoint): Promise<void> {
  return reachedPromise(point);
}

/** The action armed for this point and occurrence, if any; it fires once. */
export function armedAt(point: HookPoint, at: number): HookAction | null {
  if (!armed || armed.point !== point || armed.at !== at) return null;
  const { action } = armed;
  armed = null;
  reachedPoints.get(point)?.();
  return action;
}

/** Never returns: keeps a transaction open with `request` (a cheap read), or simply waits when there is none. */
export async function holdForever(request?: () => Promise<unknown>): Promise<never> {
  for (;;) {
    if (request) await request();
    else await new Promise(() => {});
  }
}

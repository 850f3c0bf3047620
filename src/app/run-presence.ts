/**
 * Which tab trains which run, for every tab of the origin. The tab (its engine's worker) that
 * trains a run holds the run's Web Lock (locks.ts) for as long as it trains, so no other tab can
 * start a second trainer on it, and the lock goes when that tab closes or crashes; while it trains
 * it posts each step on a BroadcastChannel, so other tabs show the run's progress live.
 */
import { RUN_LOCK_PREFIX, tryLock } from './locks';

export const RUN_CHANNEL = 'webtune-runs';

/** What a training tab tells the others. */
export type RunNews =
  | { type: 'progress'; runId: string; step: number; totalSteps: number; loss: number; elapsedMs: number }
  | { type: 'checkpoint'; runId: string; step: number }
  | { type: 'ended'; runId: string; status: string };

/** Posts a run's news to the other tabs; does nothing where BroadcastChannel does not exist. */
export class RunAnnouncer {
  readonly #channel: BroadcastChannel | null;

  constructor() {
    this.#channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(RUN_CHANNEL);
    // Node's channel would keep the process alive; in a browser there is no unref.
    (this.#channel as { unref?: () => void } | null)?.unref?.();
  }

  post(news: RunNews): void {
    this.#channel?.postMessage(news);
  }

  close(): void {
    this.#channel?.close();
  }
}

/**
 * The run's lock for this tab, or null when another tab holds it (it is training the run there).
 * Without Web Locks (Node) there are no other tabs, and the lock is always granted.
 */
export function lockRun(runId: string): Promise<{ release: () => void } | null> {
  return tryLock(RUN_LOCK_PREFIX + runId);
}

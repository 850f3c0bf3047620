/**
 * Web Locks (`navigator.locks`) shared by every tab of the origin: a lock is held by the worker or
 * page that took it until it lets go or its tab closes (or crashes), so a lock says reliably that
 * someone is still at work. webtune holds one per training run (no two tabs train the same run)
 * and one per pending dataset import (its chunks are not abandoned while a tab still writes them).
 * Where Web Locks do not exist (Node, for the CLI and unit tests) nothing is held and every name
 * counts as free.
 */

export const RUN_LOCK_PREFIX = 'webtune-run:';
export const IMPORT_LOCK_PREFIX = 'webtune-import:';

function lockManager(): LockManager | null {
  return typeof navigator !== 'undefined' && navigator.locks ? navigator.locks : null;
}

/** Whether this context has Web Locks, so that `heldLocks` speaks for every tab. */
export function locksAvailable(): boolean {
  return lockManager() !== null;
}

/**
 * Takes the lock `name` if nobody holds it: resolves with its release, null when another context
 * holds it; `{ release: () => {} }` where there are no Web Locks.
 */
export async function tryLock(name: string): Promise<{ release: () => void } | null> {
  const locks = lockManager();
  if (!locks) return { release: () => {} };
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const granted = await new Promise<boolean>((answer) => {
    void locks.request(name, { ifAvailable: true }, (lock) => {
      answer(lock !== null);
      return lock === null ? undefined : held;
    });
  });
  return granted ? { release } : null;
}

/** Names of the locks held now with `prefix`, in this tab or any other, without it. */
export async function heldLocks(prefix: string): Promise<Set<string>> {
  const locks = lockManager();
  if (!locks) return new Set();
  const { held = [] } = await locks.query();
  return new Set(held.flatMap((l) => (l.name?.startsWith(prefix) ? [l.name.slice(prefix.length)] : [])));
}

/** Resolves when nobody holds `name` any more (at once if nobody does); never where there are no Web Locks. */
export function whenFree(name: string): Promise<void> {
  const locks = lockManager();
  if (!locks) return new Promise(() => {});
  // Asking for the lock queues behind its holder; once granted it is released at once.
  return locks.request(name, async () => {});
}

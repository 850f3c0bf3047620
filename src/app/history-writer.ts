import type { HistoryPoint, WebtuneDb } from '../storage/db';

/**
 * Batches a run's history points into few transactions; `flush` writes whatever is pending. Points
 * a failed write did not store (a full disk) stay pending for the next flush.
 */
export class HistoryWriter {
  #pending: HistoryPoint[] = [];
  #lastWrite = 0;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: WebtuneDb,
    private readonly runId: string,
    /** Minimum time between two writes, so fast steps do not queue up transactions. */
    private readonly intervalMs: number,
  ) {}

  add(point: HistoryPoint): void {
    this.#pending.push(point);
    if (performance.now() - this.#lastWrite >= this.intervalMs) void this.flush().catch(() => undefined);
  }

  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      if (this.#pending.length === 0) return;
      const points = this.#pending;
      this.#pending = [];
      this.#lastWrite = performance.now();
      try {
        await this.db.appendHistory(this.runId, points);
      } catch (error) {
        this.#pending = [...points, ...this.#pending];
        throw error;
      }
    });
    // A failed write must not fail every later flush through the chain.
    const written = this.#writing;
    this.#writing = written.catch(() => undefined);
    return written;
  }
}

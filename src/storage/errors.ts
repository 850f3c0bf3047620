/**
 * Errors raised by the storage layer. Messages are shown to the user as they are, so each one says
 * what happened to their data and what they can do about it.
 */

export type StoredKind = 'dataset' | 'run' | 'checkpoint' | 'adapter' | 'model file' | 'conversation' | 'document' | 'import';

/** What the browser said about the origin's storage when a write failed (`navigator.storage.estimate()`). */
export interface QuotaFigures {
  usage: number;
  quota: number;
}

export class StorageFullError extends Error {
  override name = 'StorageFullError';
  /**
   * `unsaved` names what was not written, e.g. `the checkpoint at step 200 of run "chat-v1"`;
   * `bytes` its size, and `quota` the origin's usage and quota when the browser reports them.
   */
  constructor(
    readonly unsaved: string,
    options?: { cause?: unknown; bytes?: number | null; quota?: QuotaFigures | null },
  ) {
    const bytes = options?.bytes ?? null;
    const quota = options?.quota ?? null;
    // Browsers report a quota that need not be the limit they enforce (Chromium reports usage plus up to 10 GiB), so
    // the figures name how much to free only when they explain the failure; otherwise they say what is used.
    const shortfall = bytes !== null && quota !== null ? quota.usage + bytes - quota.quota : null;
    const needed =
      bytes === null
        ? ''
        : ` It needs about ${formatSize(bytes)}` +
          (quota === null
            ? '.'
            : shortfall! > 0
              ? `; this site uses ${formatSize(quota.usage)} of the ${formatSize(quota.quota)} the browser allows it, ` +
                `so about ${formatSize(shortfall!)} more must be freed.`
              : `; this site uses ${formatSize(quota.usage)}.`);
    super(
      `Browser storage is full, so ${unsaved} was not saved.${needed} Everything saved before is intact. ` +
        'Delete old runs, adapters or downloads in webtune (the model step lists what each download keeps), ' +
        'or free disk space on this device, then try again.',
      { cause: options?.cause },
    );
    this.bytes = bytes;
    this.quota = quota;
  }

  /** Bytes the failed write needed, when known. */
  readonly bytes: number | null;
  readonly quota: QuotaFigures | null;
}

/**
 * A stored record whose checksum does not match its contents: its bytes changed after they were
 * written. It is never used; `record` names it as the user knows it, `part` the tensor or chunk.
 */
export class DamagedRecordError extends Error {
  override name = 'DamagedRecordError';
  /** `problem` defaults to a checksum mismatch of `part`. */
  constructor(
    readonly kind: StoredKind,
    readonly id: string,
    readonly record: string,
    readonly part: string,
    advice: string,
    readonly problem = `the stored ${part} no longer match their checksum`,
  ) {
    super(`${record} is damaged: ${problem}, so webtune will not use it. ${advice}`);
  }

  /** What is damaged, as a sentence without the advice. */
  get what(): string {
    return `${this.record} is damaged: ${this.problem}`;
  }
}

/** 1536 -> "1.54 KB", three significant digits in decimal units, as browsers and operating systems show disk space. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${Number(value.toPrecision(3))} ${units[unit]}`;
}

export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError';
  /** `reason` says why storage cannot be used and what to do, as a full sentence. */
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Browser storage (IndexedDB) is not available: ${reason}`, options);
  }
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(
    readonly kind: StoredKind,
    readonly id: string,
  ) {
    super(`No ${kind} "${id}" is stored; it may have been deleted, for example in another tab.`);
  }
}

/** Browsers report a full disk or exhausted origin quota as a DOMException with this name. */
export function isQuotaExceeded(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'QuotaExceededError';
}

/** The record, or NotFoundError when there is none. */
export function found<T>(kind: StoredKind, id: string, record: T | undefined): T {
  if (record === undefined) throw new NotFoundError(kind, id);
  return record;
}

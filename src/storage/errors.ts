/**
 * Errors raised by the storage layer. Messages are shown to the user as they are, so each one says
 * what happened to their data and what they can do about it.
 */

export type StoredKind = 'dataset' | 'run' | 'checkpoint' | 'adapter' | 'model file' | 'conversation' | 'document';

export class StorageFullError extends Error {
  override name = 'StorageFullError';
  /** `unsaved` names what was not written, e.g. `the checkpoint at step 200 of run "chat-v1"`. */
  constructor(
    readonly unsaved: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Browser storage is full, so ${unsaved} was not saved. Everything saved before is intact. ` +
        'Delete old runs, adapters or downloaded models in webtune, or free disk space on this device, then try again.',
      options,
    );
  }
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

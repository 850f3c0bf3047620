/** A command line the CLI cannot run; the message says what to change. */
export class UsageError extends Error {
  override name = 'UsageError';
}

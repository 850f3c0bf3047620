/** Something the user asked for that cannot happen now; the message says what to do instead. */
export class EngineStateError extends Error {
  override name = 'EngineStateError';
}

/**
 * Checksums of what webtune stores: every tensor of a checkpoint and an adapter, and every chunk of
 * a dataset's rows. The checksum is written with the record and compared on every read, so bytes
 * that changed on disk (a bad sector, a half-written page, another program editing the profile)
 * are found before they reach training, inference or an export.
 *
 * SHA-256 through WebCrypto (`crypto.subtle`, in browsers, workers and Node alike): the browser
 * hashes on its own threads, so the engine's thread is free meanwhile, and no hashing code of ours
 * can be wrong. A 32-bit CRC would be enough to catch random damage, but in JavaScript it took as
 * long here as SHA-256 (20 MiB: 250 to 470 ms for either on this loaded machine) and runs on the
 * engine's thread; at 256 bits no accidental change goes unseen.
 */

/** Hex SHA-256 of the bytes `data` covers. */
export async function checksumOf(data: ArrayBufferView | string): Promise<string> {
  const bytes = (typeof data === 'string' ? new TextEncoder().encode(data) : data) as ArrayBufferView<ArrayBuffer>;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  let hex = '';
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** The checksums of several arrays at once, in their order. */
export function checksumsOf(arrays: readonly (ArrayBufferView | string)[]): Promise<string[]> {
  return Promise.all(arrays.map(checksumOf));
}

/**
 * Random access to the bytes of one file, so a multi-gigabyte GGUF is validated from its header
 * and then read one tensor at a time. The same interface covers a browser File/Blob, bytes in
 * memory, a FileSource entry (model folders) and, in node-byte-source.ts, a file on disk.
 */
import type { FileSource } from '../model/file-source';

export interface ByteSource {
  /** Shown in error messages: the file name or path. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `offset`; a range past the end is a caller bug (RangeError). */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export function checkByteRange(source: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new RangeError(`${source.name}: bytes [${offset}, ${offset + length}) requested from a ${source.size}-byte file`);
  }
}

export function memoryByteSource(bytes: Uint8Array, name: string): ByteSource {
  return {
    name,
    size: bytes.length,
    read: async (offset, length) => {
      checkByteRange({ name, size: bytes.length }, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** A picked or dropped File (or any Blob); `Blob.slice` reads only the range. */
export function blobByteSource(blob: Blob, name = blob instanceof File ? blob.name : 'blob'): ByteSource {
  return {
    name,
    size: blob.size,
    read: async (offset, length) => {
      checkByteRange({ name, size: blob.size }, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/** One file of a FileSource (a model folder, in the browser or in Node). */
export async function fileSourceBytes(source: FileSource, path: string): Promise<ByteSource> {
  const size = await source.size(path);
  const name = `${path} in ${source.description}`;
  return {
    name,
    size,
    read: async (offset, length) => {
      checkByteRange({ name, size }, offset, length);
      return source.read(path, offset, offset + length);
    },
  };
}

import { open, stat } from 'node:fs/promises';
import { ModelLoadError } from '../model/errors';
import { checkByteRange, type ByteSource } from './byte-source';

/** A file on disk; each read opens it, reads the range and closes it, so nothing stays open. */
export async function nodeByteSource(path: string): Promise<ByteSource> {
  const size = (await stat(path)).size;
  return {
    name: path,
    size,
    read: async (offset, length) => {
      checkByteRange({ name: path, size }, offset, length);
      const out = new Uint8Array(length);
      const handle = await open(path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) {
            throw new ModelLoadError(
              `${path} ended after ${offset + done} bytes while reading up to ${offset + length}; it changed while being read.`,
            );
          }
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      return out;
    },
  };
}

import { type FileHandle, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { MissingFileError, ModelLoadError } from './errors';
import { checkRange, normalizePath, type FileSource } from './file-source';

/** A FileSource over a directory on disk (the Node CLI and tests). Byte ranges read only that range. */
export function nodeFileSource(dir: string): FileSource {
  const root = path.resolve(dir);

  // Shard names come from model.safetensors.index.json, i.e. from a downloaded file: never let
  // one point outside the model folder.
  const resolve = (p: string): string => {
    const full = path.resolve(root, normalizePath(p));
    if (full !== root && !full.startsWith(root + path.sep)) {
      throw new ModelLoadError(`Refusing to read "${p}": it lies outside the model folder ${root}.`);
    }
    return full;
  };

  const missing = (p: string, err: unknown): never => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFileError(p, 'loading this model', root);
    throw err;
  };

  return {
    description: root,
    has: async (p) => {
      try {
        return (await stat(resolve(p))).isFile();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
    },
    size: async (p) => {
      try {
        return (await stat(resolve(p))).size;
      } catch (err) {
        return missing(p, err);
      }
    },
    read: async (p, begin, end) => {
      const full = resolve(p);
      if (begin === undefined && end === undefined) {
        try {
          const buf = await readFile(full);
          return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
        } catch (err) {
          return missing(p, err);
        }
      }
      let handle: FileHandle;
      try {
        handle = await open(full, 'r');
      } catch (err) {
        return missing(p, err);
      }
      try {
        const [b, e] = checkRange(p, (await handle.stat()).size, begin, end);
        const out = new Uint8Array(e - b);
        let done = 0;
        while (done < out.length) {
          const { bytesRead } = await handle.read(out, done, out.length - done, b + done);
          if (bytesRead === 0) {
            throw new ModelLoadError(`${p} ended after ${b + done} bytes while reading up to ${e}; it changed while being read.`);
          }
          done += bytesRead;
        }
        return out;
      } finally {
        await handle.close();
      }
    },
  };
}

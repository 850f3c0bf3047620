import { MissingFileError, ModelLoadError } from './errors';

/**
 * Read access to a folder of model files, the same in the browser (File objects) and in Node
 * (node-file-source.ts). Paths are relative to the folder, with `/` separators. Byte ranges let a
 * caller validate a multi-gigabyte safetensors file from its header and then read one tensor at a
 * time instead of holding the whole file in memory.
 */
export interface FileSource {
  readonly description: string;
  has(path: string): Promise<boolean>;
  size(path: string): Promise<number>;
  /** Bytes [begin, end) of the file (the whole file by default); never reads past its end. */
  read(path: string, begin?: number, end?: number): Promise<Uint8Array>;
}

export function normalizePath(path: string): string {
  return path
    .replace(/\\/g, '/')
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+/, '');
}

/** Checks a requested range against the file size; shared by the browser and Node sources. */
export function checkRange(path: string, fileSize: number, begin = 0, end = fileSize): [number, number] {
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || begin > end) {
    throw new ModelLoadError(`Invalid byte range [${begin}, ${end}) requested from ${path}.`);
  }
  if (end > fileSize) {
    throw new ModelLoadError(
      `${path} is ${fileSize} bytes but bytes up to ${end} were needed; the file is truncated or ` +
        'changed while it was being read. Download it again.',
    );
  }
  return [begin, end];
}

/** One file read by byte range: a Blob (File slices read from disk), or a file stored in chunks. */
export interface RangedFile {
  readonly size: number;
  /** Bytes [begin, end), already checked against `size`. */
  read(begin: number, end: number): Promise<Uint8Array>;
}

export function blobFile(blob: Blob): RangedFile {
  return { size: blob.size, read: async (begin, end) => new Uint8Array(await blob.slice(begin, end).arrayBuffer()) };
}

/**
 * A file kept as consecutive chunks (a download stored as it arrived, src/storage/download-store.ts).
 * A range that spans chunk boundaries reads only the overlapping part of each chunk, so one tensor
 * costs its own bytes and never the whole file.
 */
export function chunkedFile(chunks: readonly Blob[]): RangedFile {
  const starts: number[] = [];
  let size = 0;
  for (const chunk of chunks) {
    starts.push(size);
    size += chunk.size;
  }
  return {
    size,
    async read(begin, end) {
      // The last chunk starting at or before `begin` (binary search: a 3 GB file has ~200 chunks).
      let lo = 0;
      let hi = chunks.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= begin) lo = mid;
        else hi = mid - 1;
      }
      const out = new Uint8Array(end - begin);
      for (let i = lo; i < chunks.length && starts[i] < end; i++) {
        const from = Math.max(begin, starts[i]);
        const to = Math.min(end, starts[i] + chunks[i].size);
        if (from >= to) continue;
        const part = await chunks[i].slice(from - starts[i], to - starts[i]).arrayBuffer();
        if (from === begin && to === end) return new Uint8Array(part);
        out.set(new Uint8Array(part), from - begin);
      }
      return out;
    },
  };
}

/**
 * A FileSource over files picked or dropped in the browser, or over stored downloads. File objects
 * from a folder picker carry `webkitRelativePath` ("my-model/config.json"): the folder name they all
 * share is dropped, so `config.json` finds it. Loose dropped files match by name. When a path still
 * matches several files (a `config.json` in a subfolder too), the least nested one wins.
 */
export function filesFromList(files: File[] | Map<string, Blob | RangedFile>, description: string): FileSource {
  const entries: [string, RangedFile][] = Array.isArray(files)
    ? files.map((f) => [normalizePath(f.webkitRelativePath || f.name), blobFile(f)])
    : [...files].map(([p, b]) => [normalizePath(p), b instanceof Blob ? blobFile(b) : b]);

  const firstSegments = new Set(entries.map(([p]) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : '')));
  const [sharedRoot] = firstSegments;
  const stripRoot = firstSegments.size === 1 && sharedRoot !== '';
  const byPath = new Map<string, RangedFile>();
  for (const [p, file] of entries) byPath.set(stripRoot ? p.slice(sharedRoot.length + 1) : p, file);

  const lookup = (path: string): RangedFile | undefined => {
    const wanted = normalizePath(path);
    const exact = byPath.get(wanted);
    if (exact) return exact;
    let best: [string, RangedFile] | undefined;
    for (const [p, file] of byPath) {
      if (!p.endsWith(`/${wanted}`)) continue;
      const depth = p.split('/').length;
      if (!best || depth < best[0].split('/').length || (depth === best[0].split('/').length && p < best[0])) {
        best = [p, file];
      }
    }
    return best?.[1];
  };

  const get = (path: string): RangedFile => {
    const file = lookup(path);
    if (!file) throw new MissingFileError(path, 'loading this model', description);
    return file;
  };

  return {
    description,
    has: async (path) => lookup(path) !== undefined,
    size: async (path) => get(path).size,
    read: async (path, begin, end) => {
      const file = get(path);
      const [b, e] = checkRange(path, file.size, begin, end);
      return file.read(b, e);
    },
  };
}

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

/**
 * A FileSource over files picked or dropped in the browser. File objects from a folder picker
 * carry `webkitRelativePath` ("my-model/config.json"): the folder name they all share is dropped,
 * so `config.json` finds it. Loose dropped files match by name. When a path still matches several
 * files (a `config.json` in a subfolder too), the least nested one wins.
 */
export function filesFromList(files: File[] | Map<string, Blob>, description: string): FileSource {
  const entries: [string, Blob][] = Array.isArray(files)
    ? files.map((f) => [normalizePath(f.webkitRelativePath || f.name), f])
    : [...files].map(([p, b]) => [normalizePath(p), b]);

  const firstSegments = new Set(entries.map(([p]) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : '')));
  const [sharedRoot] = firstSegments;
  const stripRoot = firstSegments.size === 1 && sharedRoot !== '';
  const byPath = new Map<string, Blob>();
  for (const [p, blob] of entries) byPath.set(stripRoot ? p.slice(sharedRoot.length + 1) : p, blob);

  const lookup = (path: string): Blob | undefined => {
    const wanted = normalizePath(path);
    const exact = byPath.get(wanted);
    if (exact) return exact;
    let best: [string, Blob] | undefined;
    for (const [p, blob] of byPath) {
      if (!p.endsWith(`/${wanted}`)) continue;
      const depth = p.split('/').length;
      if (!best || depth < best[0].split('/').length || (depth === best[0].split('/').length && p < best[0])) {
        best = [p, blob];
      }
    }
    return best?.[1];
  };

  const get = (path: string): Blob => {
    const blob = lookup(path);
    if (!blob) throw new MissingFileError(path, 'loading this model', description);
    return blob;
  };

  return {
    description,
    has: async (path) => lookup(path) !== undefined,
    size: async (path) => get(path).size,
    read: async (path, begin, end) => {
      const blob = get(path);
      const [b, e] = checkRange(path, blob.size, begin, end);
      return new Uint8Array(await blob.slice(b, e).arrayBuffer());
    },
  };
}

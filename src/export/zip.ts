/**
 * Zip packaging of exported folders, and reading adapter zips back (browser downloads are single
 * files). Reading is defensive, because a zip is someone else's file: zip-directory.ts checks the
 * central directory (entry count, declared sizes against ZIP_LIMITS, names, data ranges) before
 * anything is inflated, and each entry is inflated in bounded steps into a buffer of its declared
 * size, so an entry that lies about its size is stopped as soon as its output passes that size.
 * Entry names are only ever keys of the returned FileSource, never paths on a disk.
 */
import { Inflate, zipSync } from 'fflate';
import { type FileSource, filesFromList } from '../model/file-source';
import { AdapterImportError } from './errors';
import { type ZipEntry, ZipFormatError, type ZipLimits, ZipRefusedError, ZIP_LIMITS, readZipDirectory } from './zip-directory';

export { ZIP_LIMITS, type ZipLimits } from './zip-directory';

/**
 * Compressed bytes handed to the inflater at a time. Deflate expands at most 1032:1, so one step
 * writes at most ~33 MB: an entry whose real output passes its declared size is stopped within
 * that much, and the output buffer itself never grows past the declared size.
 */
const INFLATE_STEP_BYTES = 32 * 1024;

/** Room for the zip's own headers and directory on top of the unpacked bytes ZIP_LIMITS allow. */
const ZIP_OVERHEAD_BYTES = 64 * 2 ** 20;

/** `store`: no compression, for weights, which barely compress and would take long to deflate. */
export function zipFiles(files: Record<string, Uint8Array>, opts: { store?: boolean } = {}): Uint8Array {
  return zipSync(files, { level: opts.store ? 0 : 6 });
}

let crcTable: Uint32Array | null = null;

function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = crcTable[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Inflates one deflated entry into exactly its declared size, refusing output past it or short of it. */
function inflateEntry(zip: Uint8Array, entry: ZipEntry): Uint8Array {
  const out = new Uint8Array(entry.uncompressedSize);
  let written = 0;
  const inflater = new Inflate((chunk) => {
    if (written + chunk.length > out.length) {
      throw new ZipRefusedError(
        `entry "${entry.path}" inflates to more than the ${entry.uncompressedSize} bytes it declares (a zip bomb, or a damaged zip)`,
      );
    }
    out.set(chunk, written);
    written += chunk.length;
  });
  const data = zip.subarray(entry.dataStart, entry.dataStart + entry.compressedSize);
  for (let at = 0; at < data.length; at += INFLATE_STEP_BYTES) {
    const end = Math.min(at + INFLATE_STEP_BYTES, data.length);
    inflater.push(data.subarray(at, end), end === data.length);
  }
  if (data.length === 0) inflater.push(data, true);
  if (written !== out.length) {
    throw new ZipFormatError(`entry "${entry.path}" inflates to ${written} bytes but declares ${entry.uncompressedSize}`);
  }
  return out;
}

/** Archive entries that are not files of the adapter: folders, and the resource forks macOS adds. */
const isJunk = (path: string) => path.endsWith('/') || path.startsWith('__MACOSX/') || /(^|\/)\._/.test(path);

/**
 * The files of a zip as a FileSource. A single top-level folder inside the zip
 * (`my-adapter/adapter_config.json`) is dropped, as for a picked folder. Throws
 * AdapterImportError for a damaged zip, one over `limits`, or one with unsafe entry names.
 */
export function unzipToFileSource(bytes: Uint8Array, description: string, limits: ZipLimits = ZIP_LIMITS): FileSource {
  const files = new Map<string, Blob>();
  try {
    for (const entry of readZipDirectory(bytes, limits)) {
      if (isJunk(entry.path)) continue;
      const data =
        entry.method === 0 ? bytes.subarray(entry.dataStart, entry.dataStart + entry.compressedSize) : inflateEntry(bytes, entry);
      if (crc32(data) !== entry.crc) throw new ZipFormatError(`the checksum of "${entry.path}" does not match its contents`);
      files.set(entry.path, new Blob([data as Uint8Array<ArrayBuffer>]));
    }
  } catch (err) {
    if (err instanceof ZipRefusedError) {
      throw new AdapterImportError(`${description} is refused: ${err.message}. Zip only the adapter folder's files.`, { cause: err });
    }
    const reason = err instanceof ZipFormatError ? err.message : (err as Error).message;
    throw new AdapterImportError(
      `${description} is not a valid zip file (${reason}); it may be truncated or damaged. Download or export it again.`,
      { cause: err },
    );
  }
  if (files.size === 0) throw new AdapterImportError(`${description} is a zip file with no files in it.`);
  return filesFromList(files, description);
}

/** unzipToFileSource for a picked or dropped file, refusing one too large to be an adapter zip before reading it. */
export async function unzipBlob(blob: Blob, description: string, limits: ZipLimits = ZIP_LIMITS): Promise<FileSource> {
  if (blob.size > limits.maxTotalBytes + ZIP_OVERHEAD_BYTES) {
    throw new AdapterImportError(
      `${description} is refused: it is ${(blob.size / 2 ** 20).toFixed(0)} MiB, larger than any adapter zip ` +
        `(at most ${(limits.maxTotalBytes / 2 ** 20).toFixed(0)} MiB unpacked). Zip only the adapter folder's files.`,
    );
  }
  return unzipToFileSource(new Uint8Array(await blob.arrayBuffer()), description, limits);
}

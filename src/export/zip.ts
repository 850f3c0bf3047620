/** Zip packaging of exported folders, and reading adapter zips back (browser downloads are single files). */
import { strFromU8, unzipSync, zipSync } from 'fflate';
import { type FileSource, filesFromList } from '../model/file-source';
import { AdapterImportError } from './errors';

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

/**
 * The CRC-32 of every entry, from the central directory. fflate does not check CRCs, so without
 * this a damaged byte inside a stored (uncompressed) entry would load as silently wrong weights.
 * Offsets follow the zip specification, zip64 included; names are decoded as fflate decodes them.
 */
function centralDirectoryCrcs(bytes: Uint8Array): Map<string, number> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);
  let end = bytes.length - 22;
  while (u32(end) !== 0x06054b50) end--;
  let count = u16(end + 8);
  let at = u32(end + 16);
  if (end >= 20 && u32(end - 20) === 0x07064b50) {
    const zip64End = Number(view.getBigUint64(end - 12, true));
    if (u32(zip64End) === 0x06064b50) {
      count = Number(view.getBigUint64(zip64End + 32, true));
      at = Number(view.getBigUint64(zip64End + 48, true));
    }
  }
  const crcs = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    if (u32(at) !== 0x02014b50) throw new Error(`central directory entry ${i} has a bad signature`);
    const nameLength = u16(at + 28);
    const name = strFromU8(bytes.subarray(at + 46, at + 46 + nameLength), !(u16(at + 8) & 0x800));
    crcs.set(name, u32(at + 16));
    at += 46 + nameLength + u16(at + 30) + u16(at + 32);
  }
  return crcs;
}

/** Archive entries that are not files of the adapter: folders, and the resource forks macOS adds. */
const isJunk = (path: string) => path.endsWith('/') || path.startsWith('__MACOSX/') || /(^|\/)\._/.test(path);

/**
 * The files of a zip as a FileSource. A single top-level folder inside the zip
 * (`my-adapter/adapter_config.json`) is dropped, as for a picked folder.
 */
export function unzipToFileSource(bytes: Uint8Array, description: string): FileSource {
  const invalid = (reason: string, cause?: unknown) =>
    new AdapterImportError(
      `${description} is not a valid zip file (${reason}); it may be truncated or damaged. Download or export it again.`,
      { cause },
    );
  let entries: Record<string, Uint8Array>;
  let crcs: Map<string, number>;
  try {
    entries = unzipSync(bytes);
    crcs = centralDirectoryCrcs(bytes);
  } catch (err) {
    throw invalid((err as Error).message, err);
  }
  const files = new Map<string, Blob>();
  for (const [path, data] of Object.entries(entries)) {
    if (crc32(data) !== crcs.get(path)) throw invalid(`the checksum of "${path}" does not match its contents`);
    if (!isJunk(path)) files.set(path, new Blob([data as Uint8Array<ArrayBuffer>]));
  }
  if (files.size === 0) throw new AdapterImportError(`${description} is a zip file with no files in it.`);
  return filesFromList(files, description);
}

/**
 * The central directory of a zip, read and checked before any entry is inflated. The directory
 * is the only trustworthy index of a zip (local headers may hold zeros when a data descriptor
 * follows), so the entry count, every declared size, every name and every data range are checked
 * here against ZipLimits. Declared sizes can lie; zip.ts checks the real output against them too.
 * Offsets follow the zip specification (APPNOTE 6.3), zip64 included.
 */
import { strFromU8 } from 'fflate';

export interface ZipLimits {
  /** Most entries (files and folders) a zip may list. */
  maxEntries: number;
  /** Largest uncompressed size one entry may declare or inflate to. */
  maxEntryBytes: number;
  /** Largest uncompressed size of all entries together. */
  maxTotalBytes: number;
}

/**
 * Limits suited to adapter zips. A PEFT adapter folder has a handful of files (config, weights,
 * README, tokenizer files); its weights are the largest: r = 64 on all seven projections of a
 * 7B Qwen2.5 model is 0.65 GB in F32, so 1 GiB covers every adapter of a model that fits in a
 * browser's GPU memory while keeping a zip bomb from taking more than that.
 */
export const ZIP_LIMITS: Readonly<ZipLimits> = {
  maxEntries: 1000,
  maxEntryBytes: 2 ** 30,
  maxTotalBytes: 2 ** 30,
};

export interface ZipEntry {
  /** The name as stored, decoded (UTF-8 when flagged, else as fflate decodes it). */
  rawName: string;
  /** The name used as a path: `/`-separated, relative, no `.` or `..` segments; ends with `/` for folders. */
  path: string;
  method: number;
  crc: number;
  compressedSize: number;
  uncompressedSize: number;
  /** Where the entry's (compressed) data starts in the zip. */
  dataStart: number;
}

/** A zip that cannot be read safely; `reason` completes "… is not a valid zip file (reason)". */
export class ZipFormatError extends Error {
  override name = 'ZipFormatError';
}

/** A zip that may be well formed but is refused: larger than ZipLimits allow, or with an unsafe entry name. */
export class ZipRefusedError extends Error {
  override name = 'ZipRefusedError';
}

const END_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_END_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
/** End record (22 bytes) plus the longest comment. */
const END_SEARCH_BYTES = 22 + 0xffff;
const U32_MAX = 0xffffffff;

const MiB = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 0)} MiB`;

/**
 * The path an entry name stands for, or an error message. Backslashes become `/`, because
 * Windows tools (PowerShell's Compress-Archive) write them as separators; empty and `.` segments
 * are dropped. A name that is absolute, starts with a drive letter, climbs out with `..` or holds
 * control characters is refused: no tool writes those for a folder it zipped, so such a zip was
 * made to escape the folder it is unpacked into.
 */
export function zipEntryPath(rawName: string): { path: string } | { problem: string } {
  const shown = JSON.stringify(rawName.length > 200 ? `${rawName.slice(0, 200)}…` : rawName);
  if (/[\u0000-\u001f\u007f]/.test(rawName)) return { problem: `entry name ${shown} contains control characters` };
  const name = rawName.replace(/\\/g, '/');
  if (name.startsWith('/')) return { problem: `entry name ${shown} is an absolute path` };
  if (/^[A-Za-z]:/.test(name)) return { problem: `entry name ${shown} starts with a drive letter` };
  const segments = name.split('/');
  if (segments.includes('..')) return { problem: `entry name ${shown} climbs out of the folder with ".."` };
  const kept = segments.filter((s) => s !== '' && s !== '.');
  if (kept.length === 0) return { problem: `entry name ${shown} is empty` };
  return { path: kept.join('/') + (name.endsWith('/') ? '/' : '') };
}

/** Reads and checks the central directory of `bytes`; throws ZipFormatError or ZipRefusedError. */
export function readZipDirectory(bytes: Uint8Array, limits: ZipLimits): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (reason: string): never => {
    throw new ZipFormatError(reason);
  };
  const inFile = (at: number, length: number, what: string) => {
    if (!(at >= 0 && length >= 0 && at + length <= bytes.length)) bad(`${what} lies outside the file`);
  };
  const u16 = (at: number) => view.getUint16(at, true);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number) => {
    const value = view.getBigUint64(at, true);
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? bad(`a zip64 field holds ${value}, beyond any real file`) : Number(value);
  };

  let end = bytes.length - 22;
  const stop = Math.max(0, bytes.length - END_SEARCH_BYTES);
  while (end >= stop && u32(end) !== END_SIGNATURE) end--;
  if (end < stop) bad('no end of central directory record');
  let count = u16(end + 10);
  let directorySize = u32(end + 12);
  let at = u32(end + 16);
  // The zip64 end record counts only when a 32-bit field is saturated (a stray signature in data is not one).
  const saturated = count === 0xffff || directorySize === U32_MAX || at === U32_MAX;
  if (saturated && end >= 20 && u32(end - 20) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64End = u64(end - 12);
    inFile(zip64End, 56, 'the zip64 end record');
    if (u32(zip64End) !== ZIP64_END_SIGNATURE) bad('the zip64 end record has a bad signature');
    count = u64(zip64End + 32);
    directorySize = u64(zip64End + 40);
    at = u64(zip64End + 48);
  }
  if (count > limits.maxEntries) {
    throw new ZipRefusedError(`it lists ${count} entries, more than the ${limits.maxEntries} an adapter zip may have`);
  }
  inFile(at, directorySize, 'the central directory');

  const entries: ZipEntry[] = [];
  const paths = new Set<string>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    inFile(at, 46, `central directory entry ${i}`);
    if (u32(at) !== CENTRAL_SIGNATURE) bad(`central directory entry ${i} has a bad signature`);
    const flags = u16(at + 8);
    const method = u16(at + 10);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const entryEnd = at + 46 + nameLength + extraLength + u16(at + 32);
    inFile(at, entryEnd - at, `central directory entry ${i}`);
    const rawName = strFromU8(bytes.subarray(at + 46, at + 46 + nameLength), !(flags & 0x800));
    const crc = u32(at + 16);
    let compressedSize = u32(at + 20);
    let uncompressedSize = u32(at + 24);
    let localOffset = u32(at + 42);
    // Zip64: each field that reads 0xffffffff is in the extra field 0x0001, in this order.
    if (compressedSize === U32_MAX || uncompressedSize === U32_MAX || localOffset === U32_MAX) {
      let x = at + 46 + nameLength;
      const extraEnd = x + extraLength;
      while (x + 4 <= extraEnd && u16(x) !== 0x0001) x += 4 + u16(x + 2);
      if (x + 4 > extraEnd) bad(`entry ${JSON.stringify(rawName)} has 32-bit sizes of 0xffffffff but no zip64 field`);
      let field = x + 4;
      const next = () => {
        if (field + 8 > Math.min(extraEnd, x + 4 + u16(x + 2))) bad(`entry ${JSON.stringify(rawName)} has a short zip64 field`);
        const value = u64(field);
        field += 8;
        return value;
      };
      if (uncompressedSize === U32_MAX) uncompressedSize = next();
      if (compressedSize === U32_MAX) compressedSize = next();
      if (localOffset === U32_MAX) localOffset = next();
    }
    at = entryEnd;

    const checked = zipEntryPath(rawName);
    if ('problem' in checked) throw new ZipRefusedError(checked.problem);
    const { path } = checked as { path: string };
    if (paths.has(path)) bad(`it holds "${path}" more than once`);
    paths.add(path);
    if (flags & 0x1) bad(`entry "${path}" is encrypted; zip the adapter folder without a password`);
    if (method !== 0 && method !== 8) {
      bad(`entry "${path}" uses compression method ${method}; only stored (0) and deflate (8) are supported`);
    }
    if (method === 0 && compressedSize !== uncompressedSize) {
      bad(`stored entry "${path}" declares ${compressedSize} stored but ${uncompressedSize} unpacked bytes`);
    }
    if (uncompressedSize > limits.maxEntryBytes) {
      throw new ZipRefusedError(
        `entry "${path}" declares ${MiB(uncompressedSize)} unpacked, more than the ${MiB(limits.maxEntryBytes)} allowed for one file`,
      );
    }
    total += uncompressedSize;
    if (total > limits.maxTotalBytes) {
      throw new ZipRefusedError(
        `its entries declare more than ${MiB(limits.maxTotalBytes)} unpacked in all, the most an adapter zip may hold`,
      );
    }

    inFile(localOffset, 30, `the local header of "${path}"`);
    if (u32(localOffset) !== LOCAL_SIGNATURE) bad(`the local header of "${path}" has a bad signature`);
    const dataStart = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    inFile(dataStart, compressedSize, `the data of "${path}"`);
    entries.push({ rawName, path, method, crc, compressedSize, uncompressedSize, dataStart });
  }
  return entries;
}

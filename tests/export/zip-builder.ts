/**
 * Zips built byte by byte, so a test can write what no honest zip tool would: sizes that lie,
 * unsafe names, zip64 fields, flags and methods webtune refuses. Layout per the zip
 * specification: local headers with data, then the central directory, then the end record.
 */
import { deflateSync } from 'fflate';

export interface HandEntry {
  name: string;
  /** The bytes the entry stands for; deflated unless `method` is 0. */
  data?: Uint8Array;
  /** Written as the entry's data instead of `data` (deflated): e.g. garbage that must never be inflated. */
  rawData?: Uint8Array;
  method?: number;
  flags?: number;
  /** Declared sizes and CRC; default to the truth. */
  uncompressedSize?: number;
  compressedSize?: number;
  crc?: number;
  /** Writes the sizes as 0xffffffff with a zip64 extra field holding them (as 64-bit values). */
  zip64?: boolean;
  /** Points the central directory at another entry's local header (entries sharing data). */
  localHeaderOf?: number;
}

let table: Uint32Array | null = null;
export function crc32(data: Uint8Array): number {
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = 0xffffffff;
  for (const byte of data) crc = table[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

class Writer {
  private parts: number[] = [];
  get length() {
    return this.parts.length;
  }
  u16(v: number) {
    this.parts.push(v & 0xff, (v >>> 8) & 0xff);
  }
  u32(v: number) {
    this.u16(v & 0xffff);
    this.u16(Math.floor(v / 0x10000) & 0xffff);
  }
  u64(v: bigint) {
    this.u32(Number(v & 0xffffffffn));
    this.u32(Number(v >> 32n));
  }
  bytes(b: Uint8Array) {
    for (const x of b) this.parts.push(x);
  }
  done() {
    return Uint8Array.from(this.parts);
  }
}

export function handZip(entries: HandEntry[]): Uint8Array {
  const w = new Writer();
  const enc = new TextEncoder();
  const infos = entries.map((e) => {
    const data = e.data ?? new Uint8Array(0);
    const method = e.method ?? 8;
    const stored = e.rawData ?? (method === 0 ? data : deflateSync(data));
    const name = enc.encode(e.name);
    return {
      e,
      name,
      stored,
      method,
      flags: (e.flags ?? 0) | 0x800,
      crc: e.crc ?? crc32(data),
      usize: e.uncompressedSize ?? data.length,
      csize: e.compressedSize ?? stored.length,
      offset: 0,
    };
  });
  for (const info of infos) {
    if (info.e.localHeaderOf !== undefined) continue;
    info.offset = w.length;
    w.u32(0x04034b50);
    w.u16(20);
    w.u16(info.flags);
    w.u16(info.method);
    w.u32(0);
    w.u32(info.crc);
    w.u32(info.stored.length);
    w.u32(Math.min(info.usize, 0xffffffff));
    w.u16(info.name.length);
    w.u16(0);
    w.bytes(info.name);
    w.bytes(info.stored);
  }
  const directoryStart = w.length;
  for (const info of infos) {
    const offset = info.e.localHeaderOf === undefined ? info.offset : infos[info.e.localHeaderOf].offset;
    w.u32(0x02014b50);
    w.u16(20);
    w.u16(20);
    w.u16(info.flags);
    w.u16(info.method);
    w.u32(0);
    w.u32(info.crc);
    w.u32(info.e.zip64 ? 0xffffffff : info.csize);
    w.u32(info.e.zip64 ? 0xffffffff : info.usize);
    w.u16(info.name.length);
    w.u16(info.e.zip64 ? 20 : 0);
    w.u16(0);
    w.u16(0);
    w.u16(0);
    w.u32(0);
    w.u32(offset);
    w.bytes(info.name);
    if (info.e.zip64) {
      w.u16(0x0001);
      w.u16(16);
      w.u64(BigInt(info.usize));
      w.u64(BigInt(info.csize));
    }
  }
  const directorySize = w.length - directoryStart;
  w.u32(0x06054b50);
  w.u16(0);
  w.u16(0);
  w.u16(entries.length);
  w.u16(entries.length);
  w.u32(directorySize);
  w.u32(directoryStart);
  w.u16(0);
  return w.done();
}

/**
 * Strict safetensors reader and F32 writer. A file is: u64 little-endian header length N, N bytes
 * of JSON, then the tensor data. The header alone (with the file size) is enough to validate the
 * whole layout, so a multi-gigabyte checkpoint is checked before any weight is read.
 *
 * Typed arrays use the host byte order; every platform with WebGPU is little-endian, like the format.
 */
import { preview } from '../util/preview';
import { SafetensorsFormatError, UnsupportedModelError } from './errors';
import type { FileSource } from './file-source';

export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
  C64: 8,
};

/** The dtypes that convert to f32 exactly, i.e. the ones webtune accepts for weights. */
export const CONVERTIBLE_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

/**
 * The longest header accepted, checked before the header is read. The reference implementation
 * allows 100 MB; the checkpoints webtune loads have headers of tens of KB (about 100 bytes per
 * tensor, a few hundred tensors per file), and 16 MiB is room for 150,000 tensors, so a longer
 * length means a corrupt or hostile file, whose parse would cost seconds and hundreds of MB.
 */
export const MAX_HEADER_BYTES = 16 * 2 ** 20;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the start of the data section, as in the header. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  file: string;
  /** Absolute offset of the data section in the file: 8 + N. */
  dataStart: number;
  /** In data order. */
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
}

export interface SafetensorsTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const fmtShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Element count of a shape, or null when it does not fit in a safe integer. */
export function numElements(shape: readonly number[]): number | null {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

/** Validates the leading u64 and returns the header length N. `firstBytes` holds at least the first 8 bytes when the file has them. */
export function safetensorsHeaderLength(firstBytes: Uint8Array, fileSize: number, fileName: string): number {
  if (fileSize < 8 || firstBytes.length < 8) {
    throw new SafetensorsFormatError(fileName, `the file is ${fileSize} bytes, too short for the 8-byte header length (truncated)`);
  }
  const n = new DataView(firstBytes.buffer, firstBytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsFormatError(
      fileName,
      `the header length ${n} is larger than ${MAX_HEADER_BYTES} bytes (corrupt, or not a safetensors file)`,
    );
  }
  const length = Number(n);
  if (8 + length > fileSize) {
    throw new SafetensorsFormatError(
      fileName,
      `the header length ${length} reaches past the end of the file (${fileSize} bytes): the file is truncated`,
    );
  }
  return length;
}

/**
 * Top-level keys of a JSON object text in order, duplicates included (JSON.parse keeps only the
 * last of duplicated keys, which would hide a second tensor of the same name). The text must
 * already have parsed as an object.
 */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(text.slice(i, j + 1)) as string);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/**
 * Parses and validates a safetensors header. `bytes` is the beginning of the file, at least its
 * first 8 + N bytes (the whole file works too); `fileSize` is the size of the whole file.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, fileName: string): SafetensorsHeader {
  const fail = (problem: string): never => {
    throw new SafetensorsFormatError(fileName, problem);
  };
  const n = safetensorsHeaderLength(bytes, fileSize, fileName);
  if (bytes.length < 8 + n) {
    throw new RangeError(`parseSafetensorsHeader(${fileName}) needs the first ${8 + n} bytes of the file, got ${bytes.length}`);
  }

  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    fail('the header is not valid UTF-8 text');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(`the header is not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(json)) return fail('the header is not a JSON object');

  const seen = new Set<string>();
  for (const key of topLevelKeys(text)) {
    if (seen.has(key)) fail(`the header lists "${key}" more than once (duplicate tensor names)`);
    seen.add(key);
  }

  const dataSize = fileSize - 8 - n;
  const metadata: Record<string, string> = {};
  const infos: SafetensorsTensorInfo[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (entry === null) continue;
      if (!isRecord(entry)) return fail('"__metadata__" is not an object of strings');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') fail(`"__metadata__" value for "${k}" is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    // Unknown extra fields are ignored, like the reference implementation does.
    if (!isRecord(entry)) return fail(`the entry for tensor "${name}" is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
      return fail(`tensor "${name}" has unknown dtype ${preview(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      return fail(`tensor "${name}" has shape ${preview(shape)}, not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      return fail(`tensor "${name}" has data_offsets ${preview(offsets)}, not integers [begin, end] with 0 <= begin <= end < 2^53`);
    }
    const [begin, end] = offsets as [number, number];
    const numel = numElements(shape);
    const expectedBytes = numel === null ? null : numel * DTYPE_BYTES[dtype];
    if (expectedBytes !== end - begin) {
      fail(
        `tensor "${name}" of shape ${fmtShape(shape)} and dtype ${dtype} needs ${expectedBytes ?? 'too many'} bytes ` +
          `but its data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
      );
    }
    if (end > dataSize) {
      fail(
        `tensor "${name}" data_offsets [${begin}, ${end}] reach past the end of the file ` +
          `(the data section has ${dataSize} bytes): the file is truncated or its header is wrong`,
      );
    }
    infos.push({ name, dtype, shape: shape as number[], begin, end });
  }

  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous: string | null = null;
  for (const info of infos) {
    if (info.begin > expected) {
      fail(`data bytes [${expected}, ${info.begin}) before tensor "${info.name}" belong to no tensor (a gap in data_offsets)`);
    }
    if (info.begin < expected) {
      fail(`tensor "${info.name}" data_offsets [${info.begin}, ${info.end}] overlap tensor "${previous}", which ends at ${expected}`);
    }
    expected = info.end;
    previous = info.name;
  }
  if (expected !== dataSize) {
    fail(`the file has ${dataSize - expected} bytes after the last tensor's data (8 + header + data must equal the file size)`);
  }

  return { file: fileName, dataStart: 8 + n, tensors: new Map(infos.map((i) => [i.name, i])), metadata };
}

/**
 * Reads just the header of a safetensors file through a FileSource and validates the whole file
 * layout. The header length is checked against the file size and MAX_HEADER_BYTES before the
 * header is read. `fileName` names the file in errors (default: `path`).
 */
export async function readSafetensorsHeader(source: FileSource, path: string, fileName = path): Promise<SafetensorsHeader> {
  const size = await source.size(path);
  const first = await source.read(path, 0, Math.min(8, size));
  const n = safetensorsHeaderLength(first, size, fileName);
  return parseSafetensorsHeader(await source.read(path, 0, 8 + n), size, fileName);
}

let halfToFloat: Float32Array | null = null;

/** All 65536 f16 values as f32 (every one is exactly representable), built on first use. */
function halfTable(): Float32Array {
  if (halfToFloat) return halfToFloat;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    table[h] =
      exponent === 0
        ? sign * fraction * 2 ** -24
        : exponent === 31
          ? fraction
            ? NaN
            : sign * Infinity
          : sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  halfToFloat = table;
  return table;
}

function u16View(bytes: Uint8Array): Uint16Array {
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

/**
 * Converts one tensor's raw bytes to f32. When `bytes` is F32 and spans its whole ArrayBuffer
 * (a fresh read of exactly this tensor), the result is a view of that buffer rather than a copy,
 * so a large embedding is not held twice; otherwise the result owns new memory.
 */
export function tensorToFloat32(bytes: Uint8Array, dtype: string, fileName: string, tensorName: string): Float32Array {
  switch (dtype) {
    case 'F32':
      if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
        return new Float32Array(bytes.buffer, 0, bytes.byteLength / 4);
      }
      return new Float32Array(bytes.slice().buffer, 0, bytes.byteLength / 4);
    case 'F16': {
      const table = halfTable();
      const src = u16View(bytes);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
      return out;
    }
    case 'BF16': {
      const src = u16View(bytes);
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return out;
    }
    default:
      throw new UnsupportedModelError(
        fileName,
        dtype,
        `tensor "${tensorName}" is stored as ${dtype}`,
        'F32, F16 and BF16 tensors (convert quantized or integer checkpoints to one of these first)',
      );
  }
}

/** Parses a whole safetensors file held in memory; every tensor is converted to f32. */
export function readSafetensors(
  bytes: Uint8Array,
  fileName: string,
): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
  const header = parseSafetensorsHeader(bytes, bytes.length, fileName);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const info of header.tensors.values()) {
    const raw = bytes.subarray(header.dataStart + info.begin, header.dataStart + info.end);
    tensors.set(info.name, { dtype: info.dtype, shape: info.shape, data: tensorToFloat32(raw, info.dtype, fileName, info.name) });
  }
  return { tensors, metadata: header.metadata };
}

/**
 * Serialises F32 tensors the way the Python library does: names sorted, `__metadata__` first,
 * header padded with spaces to a multiple of 8 so the data section starts 8-byte aligned.
 */
export function writeSafetensors(
  tensors: { name: string; shape: number[]; data: Float32Array }[],
  metadata?: Record<string, string>,
): Uint8Array {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Built by hand: a JS object would move integer-like tensor names ("0", "1") to the front.
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`safetensors metadata value for "${k}" must be a string`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (let i = 0; i < sorted.length; i++) {
    const { name, shape, data } = sorted[i];
    if (name === '__metadata__') throw new RangeError('"__metadata__" cannot be used as a tensor name');
    if (i > 0 && sorted[i - 1].name === name) throw new RangeError(`tensor "${name}" is given more than once`);
    if (!shape.every(isCount) || numElements(shape) !== data.length) {
      throw new RangeError(`tensor "${name}": shape ${fmtShape(shape)} does not match its ${data.length} values`);
    }
    const info = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const { data } of sorted) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return out;
}

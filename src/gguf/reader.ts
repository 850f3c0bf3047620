/**
 * Strict GGUF v2/v3 header reader (little-endian): magic `GGUF`, u32 version, u64 tensor count,
 * u64 metadata count, the key/value pairs, the tensor infos (name, u32 n_dims, u64 dims innermost
 * first, u32 ggml type, u64 offset), then the data section at the next multiple of
 * `general.alignment` (default 32). Only the header is read, in chunks; every count and length
 * is checked against the bytes the file still has before anything is allocated, so a truncated
 * or hostile file fails with a GgufFormatError that names the problem instead of reading past
 * the end or allocating gigabytes. The tensor layout is validated as a whole: each tensor's data
 * aligned, inside the file and not overlapping another.
 */
import type { ByteSource } from './byte-source';
import { GgufFormatError, type GgufProblem } from './errors';
import { ggmlByteSize, ggmlTypeById, type GgmlTypeInfo } from './ggml-types';
import { type GgufArray, type GgufMetadata, type GgufValue, GgufValueType, scalarBytes, valueTypeName } from './values';

export interface GgufTensorInfo {
  name: string;
  /** GGUF order, innermost first: a row-major [out, in] matrix has dims [in, out]. */
  dims: number[];
  type: GgmlTypeInfo;
  /** Offset from the start of the data section, as stored. */
  offset: number;
  elements: number;
  byteSize: number;
}

export interface GgufHeader {
  file: string;
  fileSize: number;
  version: number;
  metadata: GgufMetadata;
  /** In file order. */
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
}

const DEFAULT_ALIGNMENT = 32;
const CHUNK = 1 << 20;
/** ggml's limits: 4 dims, tensor names shorter than 64 bytes. */
const MAX_DIMS = 4;
const MAX_NAME_BYTES = 63;
/**
 * Far above anything real (the largest metadata are vocabularies of ~260k strings and chat
 * templates of ~100 kB) and low enough that a hostile count cannot exhaust memory.
 */
export const MAX_STRING_BYTES = 64 << 20;
export const MAX_ARRAY_ITEMS = 1 << 24;
/** Smallest encodings: a key/value (8-byte length, 1-byte key, type, 1-byte value) and a tensor info (1 dim). */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;

type Fail = (problem: GgufProblem, detail: string) => never;

/** Sequential reads over a ByteSource, buffered in chunks; never past the end of the file. */
class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufAt = 0;
  pos = 0;
  private readonly decoder = new TextDecoder('utf-8');

  constructor(
    private readonly source: ByteSource,
    readonly fail: Fail,
  ) {}

  get remaining(): number {
    return this.source.size - this.pos;
  }

  has(n: number): boolean {
    return this.pos + n <= this.bufAt + this.buf.length;
  }

  async fill(n: number, what: string): Promise<void> {
    if (n > this.remaining) {
      this.fail('truncated', `the file ends at byte ${this.source.size}, but ${what} needs ${n} bytes from byte ${this.pos}`);
    }
    this.buf = await this.source.read(this.pos, Math.min(this.remaining, Math.max(n, CHUNK)));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.bufAt = this.pos;
  }

  async need(n: number, what: string): Promise<void> {
    if (!this.has(n)) await this.fill(n, what);
  }

  private at(n: number): number {
    const at = this.pos - this.bufAt;
    this.pos += n;
    return at;
  }

  u8 = () => this.view.getUint8(this.at(1));
  i8 = () => this.view.getInt8(this.at(1));
  u16 = () => this.view.getUint16(this.at(2), true);
  i16 = () => this.view.getInt16(this.at(2), true);
  u32 = () => this.view.getUint32(this.at(4), true);
  i32 = () => this.view.getInt32(this.at(4), true);
  f32 = () => this.view.getFloat32(this.at(4), true);
  f64 = () => this.view.getFloat64(this.at(8), true);
  u64 = () => this.view.getBigUint64(this.at(8), true);
  i64 = () => this.view.getBigInt64(this.at(8), true);

  /** A copy of the next n bytes (already buffered with need). */
  bytes(n: number): Uint8Array {
    const at = this.at(n);
    return this.buf.slice(at, at + n);
  }

  /** The next string when it is already buffered whole (the common case inside a vocabulary), else null without reading. */
  bufferedString(): string | null {
    if (!this.has(8)) return null;
    const length = this.view.getBigUint64(this.pos - this.bufAt, true);
    if (length > BigInt(MAX_STRING_BYTES) || !this.has(8 + Number(length))) return null;
    const at = this.at(8 + Number(length)) + 8;
    return this.decoder.decode(this.buf.subarray(at, at + Number(length)));
  }

  async string(what: string): Promise<string> {
    await this.need(8, what);
    const length = this.u64();
    if (length > BigInt(this.remaining)) {
      this.fail('string-length', `${what} claims ${length} bytes, but only ${this.remaining} bytes follow in the file`);
    }
    if (length > BigInt(MAX_STRING_BYTES)) {
      this.fail('string-length', `${what} claims ${length} bytes, more than the ${MAX_STRING_BYTES} bytes any real GGUF string has`);
    }
    const n = Number(length);
    await this.need(n, what);
    const at = this.at(n);
    return this.decoder.decode(this.buf.subarray(at, at + n));
  }
}

async function readScalar(c: Cursor, type: number, what: string): Promise<GgufValue> {
  if (type === GgufValueType.STRING) return { type, value: await c.string(what) };
  const size = scalarBytes(type);
  if (size === null) return c.fail('value-type', `${what} has value type ${type}, which GGUF does not define (or a nested array)`);
  await c.need(size, what);
  switch (type) {
    case GgufValueType.UINT8:
      return { type, value: c.u8() };
    case GgufValueType.INT8:
      return { type, value: c.i8() };
    case GgufValueType.UINT16:
      return { type, value: c.u16() };
    case GgufValueType.INT16:
      return { type, value: c.i16() };
    case GgufValueType.UINT32:
      return { type, value: c.u32() };
    case GgufValueType.INT32:
      return { type, value: c.i32() };
    case GgufValueType.FLOAT32:
      return { type, value: c.f32() };
    case GgufValueType.FLOAT64:
      return { type, value: c.f64() };
    case GgufValueType.BOOL:
      return { type, value: c.u8() !== 0 };
    case GgufValueType.UINT64:
      return { type, value: c.u64() };
    default:
      return { type: GgufValueType.INT64, value: c.i64() };
  }
}

async function readArray(c: Cursor, what: string): Promise<GgufArray> {
  await c.need(12, what);
  const itemType = c.u32();
  const count = c.u64();
  const itemBytes = itemType === GgufValueType.STRING ? 8 : scalarBytes(itemType);
  if (itemBytes === null) {
    return c.fail(
      'value-type',
      `${what} is an array of value type ${itemType} (${valueTypeName(itemType)}); GGUF arrays hold scalars or strings`,
    );
  }
  if (count * BigInt(itemBytes) > BigInt(c.remaining)) {
    c.fail('array-count', `${what} claims ${count} items of at least ${itemBytes} bytes, but only ${c.remaining} bytes follow in the file`);
  }
  if (count > BigInt(MAX_ARRAY_ITEMS)) {
    c.fail('array-count', `${what} claims ${count} items, more than the ${MAX_ARRAY_ITEMS} any real GGUF array has`);
  }
  const n = Number(count);
  if (itemType === GgufValueType.STRING) {
    const items: string[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = c.bufferedString() ?? (await c.string(`item ${i} of ${what}`));
    return { itemType, items };
  }
  if (itemType === GgufValueType.BOOL) {
    await c.need(n, what);
    return { itemType, items: Array.from(c.bytes(n), (b) => b !== 0) };
  }
  await c.need(n * itemBytes, what);
  const buffer = c.bytes(n * itemBytes).buffer;
  switch (itemType) {
    case GgufValueType.UINT8:
      return { itemType, items: new Uint8Array(buffer) };
    case GgufValueType.INT8:
      return { itemType, items: new Int8Array(buffer) };
    case GgufValueType.UINT16:
      return { itemType, items: new Uint16Array(buffer) };
    case GgufValueType.INT16:
      return { itemType, items: new Int16Array(buffer) };
    case GgufValueType.UINT32:
      return { itemType, items: new Uint32Array(buffer) };
    case GgufValueType.INT32:
      return { itemType, items: new Int32Array(buffer) };
    case GgufValueType.FLOAT32:
      return { itemType, items: new Float32Array(buffer) };
    case GgufValueType.FLOAT64:
      return { itemType, items: new Float64Array(buffer) };
    case GgufValueType.UINT64:
      return { itemType, items: new BigUint64Array(buffer) };
    default:
      return { itemType: GgufValueType.INT64, items: new BigInt64Array(buffer) };
  }
}

async function readMetadata(c: Cursor, count: number): Promise<GgufMetadata> {
  const metadata: GgufMetadata = new Map();
  for (let i = 0; i < count; i++) {
    const key = await c.string(`the key of metadata entry ${i}`);
    if (key === '') c.fail('duplicate', `metadata entry ${i} has an empty key`);
    if (metadata.has(key)) c.fail('duplicate', `the metadata key "${key}" appears twice`);
    await c.need(4, `the value type of "${key}"`);
    const type = c.u32();
    const what = `the value of "${key}"`;
    metadata.set(key, type === GgufValueType.ARRAY ? { type, value: await readArray(c, what) } : await readScalar(c, type, what));
  }
  return metadata;
}

async function readTensorInfo(c: Cursor, index: number, names: Set<string>): Promise<GgufTensorInfo> {
  const name = await c.string(`the name of tensor ${index}`);
  const nameBytes = new TextEncoder().encode(name).length;
  if (nameBytes === 0 || nameBytes > MAX_NAME_BYTES) {
    c.fail('tensor-name', `tensor ${index} has a ${nameBytes}-byte name; GGUF tensor names have 1 to ${MAX_NAME_BYTES} bytes`);
  }
  if (names.has(name)) c.fail('duplicate', `the tensor name "${name}" appears twice`);
  names.add(name);
  await c.need(4, `the dimension count of tensor "${name}"`);
  const nDims = c.u32();
  if (nDims < 1 || nDims > MAX_DIMS) c.fail('dims', `tensor "${name}" has ${nDims} dimensions; ggml tensors have 1 to ${MAX_DIMS}`);
  await c.need(8 * nDims + 12, `the shape, type and offset of tensor "${name}"`);
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < nDims; d++) {
    const size = c.u64();
    elements *= Number(size);
    if (size > BigInt(Number.MAX_SAFE_INTEGER) || !Number.isSafeInteger(elements)) {
      c.fail('dims', `tensor "${name}" has dimension ${d} of ${size}, so its element count overflows (more than 2^53 values)`);
    }
    dims.push(Number(size));
  }
  const typeId = c.u32();
  const offset = c.u64();
  const type = ggmlTypeById(typeId);
  if (!type) {
    c.fail('unknown-type', `tensor "${name}" has ggml type id ${typeId}, which is unknown (a damaged file, or a type newer than webtune)`);
  }
  if (dims[0] % type.blockSize !== 0) {
    c.fail('row-size', `tensor "${name}" is ${type.name} (blocks of ${type.blockSize} values) but its rows have ${dims[0]} values`);
  }
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) {
    c.fail('tensor-past-end', `tensor "${name}" has data offset ${offset}, far past the end of the file`);
  }
  return { name, dims, type, offset: Number(offset), elements, byteSize: ggmlByteSize(type, elements) };
}

function readAlignment(metadata: GgufMetadata, fail: Fail): number {
  const value = metadata.get('general.alignment');
  if (!value) return DEFAULT_ALIGNMENT;
  if (value.type !== GgufValueType.UINT32) {
    return fail('alignment', `general.alignment is ${valueTypeName(value.type)}, but GGUF requires a uint32`);
  }
  const a = value.value;
  if (a === 0 || (a & (a - 1)) !== 0) fail('alignment', `general.alignment is ${a}, not a power of 2`);
  return a;
}

/** Each tensor's data must be aligned, end inside the file and not overlap another tensor's. */
function checkLayout(tensors: GgufTensorInfo[], alignment: number, dataOffset: number, fileSize: number, fail: Fail): void {
  const dataBytes = fileSize - dataOffset;
  for (const t of tensors) {
    if (t.offset % alignment !== 0)
      fail('misaligned', `tensor "${t.name}" starts at data offset ${t.offset}, not a multiple of the alignment ${alignment}`);
    if (t.offset + t.byteSize > dataBytes) {
      fail(
        'tensor-past-end',
        `tensor "${t.name}" (${t.byteSize} bytes at data offset ${t.offset}) ends past the end of the file, ` +
          `whose data section has ${dataBytes} bytes`,
      );
    }
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const [prev, t] = [sorted[i - 1], sorted[i]];
    if (t.offset < prev.offset + prev.byteSize && t.byteSize > 0 && prev.byteSize > 0) {
      fail(
        'overlap',
        `the data of tensors "${prev.name}" (bytes ${prev.offset}..${prev.offset + prev.byteSize}) ` +
          `and "${t.name}" (from ${t.offset}) overlap`,
      );
    }
  }
}

export async function readGgufHeader(source: ByteSource): Promise<GgufHeader> {
  const fail: Fail = (problem, detail) => {
    throw new GgufFormatError(source.name, problem, detail);
  };
  const c = new Cursor(source, fail);
  await c.need(4, 'the magic "GGUF"');
  const magic = c.bytes(4);
  if (String.fromCharCode(...magic) !== 'GGUF') {
    fail('not-gguf', `it starts with bytes [${Array.from(magic).join(', ')}], not the magic "GGUF"`);
  }
  await c.need(20, 'the version and counts');
  const version = c.u32();
  if (version === 1) fail('version', 'it is GGUF version 1, which llama.cpp no longer reads either; convert the model again');
  if (version > 0xffff && (version & 0xffff) === 0) fail('big-endian', 'it is a big-endian GGUF; webtune reads little-endian files only');
  if (version !== 2 && version !== 3) fail('version', `it is GGUF version ${version}; webtune reads versions 2 and 3`);
  const tensorCount = c.u64();
  const kvCount = c.u64();
  if (kvCount * BigInt(MIN_KV_BYTES) > BigInt(c.remaining)) {
    fail(
      'too-many-entries',
      `it claims ${kvCount} metadata entries, more than its ${c.remaining} remaining bytes can hold ` +
        '(a corrupt count, or the file is truncated)',
    );
  }
  if (tensorCount * BigInt(MIN_TENSOR_INFO_BYTES) > BigInt(c.remaining)) {
    fail(
      'too-many-entries',
      `it claims ${tensorCount} tensors, more than its ${c.remaining} remaining bytes can hold (a corrupt count, or the file is truncated)`,
    );
  }
  const metadata = await readMetadata(c, Number(kvCount));
  const alignment = readAlignment(metadata, fail);
  const names = new Set<string>();
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < Number(tensorCount); i++) tensors.push(await readTensorInfo(c, i, names));
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  if (tensors.length > 0 && dataOffset > source.size) {
    fail('truncated', `the file ends at byte ${source.size}, before its data section at byte ${dataOffset}`);
  }
  checkLayout(tensors, alignment, dataOffset, source.size, fail);
  return { file: source.name, fileSize: source.size, version, metadata, tensors, alignment, dataOffset };
}

/**
 * GGUF v3 writer: header (magic, version, counts, metadata, tensor infos), then each tensor's
 * bytes at the next multiple of the alignment, in the order given, contiguous as llama.cpp
 * requires (it refuses a tensor whose offset is not the padded end of the previous one). The
 * result is a list of parts, so a caller can stream or wrap them in a Blob instead of joining a
 * multi-gigabyte file in memory.
 */
import { ggmlByteSize, ggmlType, type GgmlTypeInfo, type GgmlTypeName } from './ggml-types';
import { type GgufArray, type GgufValue, GgufValueType } from './values';

const DEFAULT_ALIGNMENT = 32;

class HeaderWriter {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  private readonly encoder = new TextEncoder();
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(2 * this.bytes.length, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // Each method reserves before it reads `this.view`: reserving may replace the buffer and its view.
  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }

  i8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }

  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }

  i16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }

  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }

  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }

  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }

  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }

  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }

  i64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
  }

  raw(data: Uint8Array): void {
    const at = this.reserve(data.length);
    this.bytes.set(data, at);
  }

  string(s: string): void {
    const utf8 = this.encoder.encode(s);
    this.u64(utf8.length);
    this.raw(utf8);
  }

  padTo(alignment: number): void {
    this.reserve((alignment - (this.length % alignment)) % alignment);
  }

  result(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

function writeScalar(w: HeaderWriter, type: number, value: number | bigint | boolean | string): void {
  switch (type) {
    case GgufValueType.UINT8:
      w.u8(value as number);
      return;
    case GgufValueType.INT8:
      w.i8(value as number);
      return;
    case GgufValueType.UINT16:
      w.u16(value as number);
      return;
    case GgufValueType.INT16:
      w.i16(value as number);
      return;
    case GgufValueType.UINT32:
      w.u32(value as number);
      return;
    case GgufValueType.INT32:
      w.i32(value as number);
      return;
    case GgufValueType.FLOAT32:
      w.f32(value as number);
      return;
    case GgufValueType.FLOAT64:
      w.f64(value as number);
      return;
    case GgufValueType.BOOL:
      w.u8(value ? 1 : 0);
      return;
    case GgufValueType.STRING:
      w.string(value as string);
      return;
    case GgufValueType.UINT64:
      w.u64(value as bigint);
      return;
    case GgufValueType.INT64:
      w.i64(value as bigint);
      return;
    default:
      throw new RangeError(`GGUF value type ${type} cannot be written as a scalar`);
  }
}

function writeValue(w: HeaderWriter, v: GgufValue): void {
  w.u32(v.type);
  if (v.type !== GgufValueType.ARRAY) {
    writeScalar(w, v.type, v.value);
    return;
  }
  const array: GgufArray = v.value;
  w.u32(array.itemType);
  w.u64(array.items.length);
  for (const item of array.items) writeScalar(w, array.itemType, item);
}

export interface GgufTensorLayout {
  name: string;
  /** Innermost first (a row-major [out, in] matrix is [in, out]). */
  dims: number[];
  type: GgmlTypeName | GgmlTypeInfo;
}

export interface GgufData extends GgufTensorLayout {
  data: Uint8Array;
}

/** The alignment a metadata list asks for (`general.alignment`, default 32). */
export function ggufAlignment(metadata: readonly [string, GgufValue][]): number {
  const entry = metadata.find(([key]) => key === 'general.alignment')?.[1];
  const alignment = entry && entry.type === GgufValueType.UINT32 ? entry.value : DEFAULT_ALIGNMENT;
  if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new RangeError(`general.alignment ${alignment} is not a power of 2`);
  return alignment;
}

export function tensorBytes(t: GgufTensorLayout): number {
  const type = typeof t.type === 'string' ? ggmlType(t.type) : t.type;
  return ggmlByteSize(
    type,
    t.dims.reduce((a, b) => a * b, 1),
  );
}

/** Zero bytes that follow `byteLength` bytes of tensor data up to the next multiple of `alignment`. */
export function tensorPadding(byteLength: number, alignment: number): Uint8Array {
  return new Uint8Array((alignment - (byteLength % alignment)) % alignment);
}

/**
 * Everything before the data section, padded to it: the tensors' data then follow in the order
 * given, each padded with `tensorPadding`. Only sizes are needed, so the data can be produced later,
 * one tensor at a time.
 */
export function encodeGgufHeader(metadata: readonly [string, GgufValue][], tensors: readonly GgufTensorLayout[]): Uint8Array {
  const alignment = ggufAlignment(metadata);
  const w = new HeaderWriter();
  w.raw(new TextEncoder().encode('GGUF'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    writeValue(w, value);
  }
  let offset = 0;
  for (const t of tensors) {
    const type = typeof t.type === 'string' ? ggmlType(t.type) : t.type;
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(type.id);
    w.u64(offset);
    offset += tensorBytes(t);
    offset += tensorPadding(offset, alignment).length;
  }
  w.padTo(alignment);
  return w.result();
}

/** A whole GGUF file as parts (header, then each tensor's data and padding). */
export function encodeGguf(metadata: Iterable<[string, GgufValue]>, tensors: GgufData[]): Uint8Array[] {
  const entries = [...metadata];
  const alignment = ggufAlignment(entries);
  for (const t of tensors) {
    if (t.data.length !== tensorBytes(t))
      throw new RangeError(
        `tensor "${t.name}": ${t.data.length} bytes do not hold [${t.dims}] as ${typeof t.type === 'string' ? t.type : t.type.name}`,
      );
  }
  const parts = [encodeGgufHeader(entries, tensors)];
  for (const t of tensors) {
    parts.push(t.data);
    const pad = tensorPadding(t.data.length, alignment);
    if (pad.length) parts.push(pad);
  }
  return parts;
}

export function joinParts(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

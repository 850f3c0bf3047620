import { type ByteSource, memoryByteSource } from '../../src/gguf/byte-source';
import { encodeGguf, type GgufData, joinParts } from '../../src/gguf/encode';
import { quantize } from '../../src/gguf/quants';
import { gguf, type GgufValue, GgufValueType } from '../../src/gguf/values';
import { randomArray } from '../helpers/numeric';

/** One metadata entry of every GGUF value type, arrays of every item type included. */
export function everyValueType(): [string, GgufValue][] {
  const T = GgufValueType;
  return [
    ['general.architecture', gguf.string('llama')],
    ['general.alignment', gguf.u32(64)],
    ['test.u8', { type: T.UINT8, value: 250 }],
    ['test.i8', { type: T.INT8, value: -120 }],
    ['test.u16', { type: T.UINT16, value: 65000 }],
    ['test.i16', { type: T.INT16, value: -32000 }],
    ['test.u32', { type: T.UINT32, value: 4_000_000_000 }],
    ['test.i32', { type: T.INT32, value: -2_000_000_000 }],
    ['test.f32', { type: T.FLOAT32, value: 0.5 }],
    ['test.bool', { type: T.BOOL, value: true }],
    ['test.string', gguf.string('héllo, wörld ✓')],
    ['test.u64', { type: T.UINT64, value: 2n ** 60n + 1n }],
    ['test.i64', { type: T.INT64, value: -(2n ** 62n) }],
    ['test.f64', { type: T.FLOAT64, value: Math.PI }],
    ['test.empty_string', gguf.string('')],
    ['test.arr.u8', { type: T.ARRAY, value: { itemType: T.UINT8, items: Uint8Array.from([1, 2, 255]) } }],
    ['test.arr.i8', { type: T.ARRAY, value: { itemType: T.INT8, items: Int8Array.from([-1, 2]) } }],
    ['test.arr.u16', { type: T.ARRAY, value: { itemType: T.UINT16, items: Uint16Array.from([1, 65535]) } }],
    ['test.arr.i16', { type: T.ARRAY, value: { itemType: T.INT16, items: Int16Array.from([-3, 3]) } }],
    ['test.arr.u32', { type: T.ARRAY, value: { itemType: T.UINT32, items: Uint32Array.from([7, 4_000_000_000]) } }],
    ['test.arr.i32', gguf.i32s([-5, 0, 5])],
    ['test.arr.f32', gguf.f32s([0.25, -1e-3, 3])],
    ['test.arr.f64', { type: T.ARRAY, value: { itemType: T.FLOAT64, items: Float64Array.from([Math.E]) } }],
    ['test.arr.u64', { type: T.ARRAY, value: { itemType: T.UINT64, items: BigUint64Array.from([2n ** 63n]) } }],
    ['test.arr.i64', { type: T.ARRAY, value: { itemType: T.INT64, items: BigInt64Array.from([-7n]) } }],
    ['test.arr.bool', { type: T.ARRAY, value: { itemType: T.BOOL, items: [true, false, true] } }],
    ['test.arr.string', gguf.strings(['a', '', '▁the', '<0x0A>'])],
    ['test.arr.empty', gguf.strings([])],
  ];
}

/** Tensors of several types and ranks, sizes not multiples of the alignment. */
export function sampleTensors(): GgufData[] {
  const f = (n: number, seed: number) => randomArray(n, seed);
  return [
    { name: 'a.f32', dims: [3, 5], type: 'F32', data: quantize('F32', f(15, 1), 3) },
    { name: 'b.f16', dims: [7], type: 'F16', data: quantize('F16', f(7, 2), 7) },
    { name: 'c.q8_0', dims: [64, 3], type: 'Q8_0', data: quantize('Q8_0', f(192, 3), 64) },
    { name: 'd.q4_k', dims: [256, 2, 1], type: 'Q4_K', data: quantize('Q4_K', f(512, 4), 256) },
    { name: 'e.bf16', dims: [2, 2, 2, 2], type: 'BF16', data: quantize('BF16', f(16, 5), 2) },
  ];
}

export function sampleFile(): Uint8Array<ArrayBuffer> {
  return joinParts(encodeGguf(everyValueType(), sampleTensors()));
}

/** A memory source that records how many bytes were read and refuses (as a test failure) reads past the end. */
export function recordingSource(bytes: Uint8Array, name = 'test.gguf'): ByteSource & { bytesRead: number; reads: number } {
  const inner = memoryByteSource(bytes, name);
  const source = {
    name,
    size: bytes.length,
    bytesRead: 0,
    reads: 0,
    read: async (offset: number, length: number) => {
      source.bytesRead += length;
      source.reads++;
      return inner.read(offset, length);
    },
  };
  return source;
}

export function setU32(bytes: Uint8Array, at: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(at, v, true);
  return out;
}

export function setU64(bytes: Uint8Array, at: number, v: bigint): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setBigUint64(at, v, true);
  return out;
}

/** Index just past the first occurrence of `text` (UTF-8) in `bytes`. */
export function offsetAfter(bytes: Uint8Array, text: string): number {
  const needle = new TextEncoder().encode(text);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i + needle.length;
  }
  throw new Error(`"${text}" not found`);
}

/** Where tensor `name`'s info fields sit: n_dims, each dim, type, offset. */
export function tensorInfoFields(bytes: Uint8Array, name: string) {
  const nDims = offsetAfter(bytes, name);
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(nDims, true);
  return { nDims, dim: (d: number) => nDims + 4 + 8 * d, type: nDims + 4 + 8 * n, offset: nDims + 8 + 8 * n };
}

/** All parts of a streamed GGUF file, joined. */
export async function collectParts(parts: AsyncIterable<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const list: Uint8Array[] = [];
  for await (const p of parts) list.push(p);
  return joinParts(list);
}

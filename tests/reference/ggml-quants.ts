/**
 * Reference decoders of the ggml block formats, written straight from the block structs in
 * ggml-common.h, one output value at a time: for value v, find its block, then the byte and bits
 * that hold its quant, scale and min, and compute it with ggml's f32 arithmetic (each product and
 * difference rounded to f32, Math.fround). Deliberately unlike src/gguf/quants (which walks
 * blocks chunk by chunk), so that a misreading of the layout in one is not repeated in the other.
 *
 * Each decoder also reports the value's grid: value = step * q - offset for an integer level q in
 * [qMin, qMax], which is what a quantizer's error bound is measured against.
 */

export interface RefValue {
  value: number;
  step: number;
  offset: number;
  qMin: number;
  qMax: number;
}

export type RefFormat = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q5_0' | 'Q5_1' | 'Q4_K' | 'Q5_K' | 'Q6_K';

const f32 = Math.fround;

/** IEEE binary16 from its bit fields: 1 sign, 5 exponent (bias 15), 10 fraction bits. */
export function refHalf(lo: number, hi: number): number {
  const bits = lo | (hi << 8);
  const sign = bits >> 15 ? -1 : 1;
  const exponent = (bits >> 10) & 31;
  const fraction = bits & 1023;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  return sign * (1024 + fraction) * 2 ** (exponent - 25);
}

const int8 = (byte: number) => (byte > 127 ? byte - 256 : byte);

/**
 * `block_q4_K` / `block_q5_K` `scales[12]`: sub-blocks 0-3 keep scale and min in the low 6 bits
 * of bytes 0-3 and 4-7; sub-blocks 4-7 keep their low 4 bits in the nibbles of bytes 8-11 and
 * their top 2 bits in the top 2 bits of bytes 0-3 (scale) and 4-7 (min).
 */
function kScaleMin(bytes: Uint8Array, scalesAt: number, sub: number): [number, number] {
  const s = (i: number) => bytes[scalesAt + i];
  if (sub < 4) return [s(sub) % 64, s(4 + sub) % 64];
  const k = sub - 4;
  const scale = (s(8 + k) % 16) + 16 * Math.floor(s(k) / 64);
  const min = Math.floor(s(8 + k) / 16) + 16 * Math.floor(s(4 + k) / 64);
  return [scale, min];
}

/** Value `v` of a tensor stored as `format` in `bytes`. */
export function refValue(format: RefFormat, bytes: Uint8Array, v: number): RefValue {
  switch (format) {
    case 'F32': {
      const value = new DataView(bytes.buffer, bytes.byteOffset).getFloat32(4 * v, true);
      return { value, step: 0, offset: 0, qMin: 0, qMax: 0 };
    }
    case 'F16':
      return { value: refHalf(bytes[2 * v], bytes[2 * v + 1]), step: 0, offset: 0, qMin: 0, qMax: 0 };
    case 'BF16': {
      const value = new DataView(new Uint8Array([0, 0, bytes[2 * v], bytes[2 * v + 1]]).buffer).getFloat32(0, true);
      return { value, step: 0, offset: 0, qMin: 0, qMax: 0 };
    }
    case 'Q8_0': {
      // struct { ggml_half d; int8_t qs[32]; }
      const block = 34 * Math.floor(v / 32);
      const d = refHalf(bytes[block], bytes[block + 1]);
      const q = int8(bytes[block + 2 + (v % 32)]);
      return { value: f32(q * d), step: d, offset: 0, qMin: -127, qMax: 127 };
    }
    case 'Q4_0': {
      // struct { ggml_half d; uint8_t qs[16]; }: qs[j] low nibble is value j, high nibble value j + 16.
      const block = 18 * Math.floor(v / 32);
      const j = v % 32;
      const d = refHalf(bytes[block], bytes[block + 1]);
      const byte = bytes[block + 2 + (j % 16)];
      const nibble = j < 16 ? byte % 16 : Math.floor(byte / 16);
      return { value: f32((nibble - 8) * d), step: d, offset: 0, qMin: -8, qMax: 7 };
    }
    case 'Q5_0':
    case 'Q5_1': {
      // struct { ggml_half d; [ggml_half m;] uint8_t qh[4]; uint8_t qs[16]; }: bit j of the
      // little-endian u32 qh is the fifth bit of value j; qs as in Q4_0.
      const withMin = format === 'Q5_1';
      const block = (withMin ? 24 : 22) * Math.floor(v / 32);
      const j = v % 32;
      const d = refHalf(bytes[block], bytes[block + 1]);
      const m = withMin ? refHalf(bytes[block + 2], bytes[block + 3]) : 0;
      const qh = block + (withMin ? 4 : 2);
      const fifth = Math.floor(bytes[qh + Math.floor(j / 8)] / 2 ** (j % 8)) % 2;
      const byte = bytes[qh + 4 + (j % 16)];
      const q = (j < 16 ? byte % 16 : Math.floor(byte / 16)) + 16 * fifth;
      if (!withMin) return { value: f32((q - 16) * d), step: d, offset: 0, qMin: -16, qMax: 15 };
      return { value: f32(q * d + m), step: d, offset: -m, qMin: 0, qMax: 31 };
    }
    case 'Q4_K':
    case 'Q5_K': {
      // struct { ggml_half d, dmin; uint8_t scales[12]; [uint8_t qh[32];] uint8_t qs[128]; }
      const five = format === 'Q5_K';
      const block = (five ? 176 : 144) * Math.floor(v / 256);
      const r = v % 256;
      const sub = Math.floor(r / 32);
      const l = r % 32;
      const d = refHalf(bytes[block], bytes[block + 1]);
      const dmin = refHalf(bytes[block + 2], bytes[block + 3]);
      const [scale, min] = kScaleMin(bytes, block + 4, sub);
      // qs byte 32 * (sub / 2) + l: even sub-blocks in the low nibble, odd ones in the high nibble.
      const qs = block + (five ? 48 : 16) + 32 * Math.floor(sub / 2) + l;
      let q = sub % 2 === 0 ? bytes[qs] % 16 : Math.floor(bytes[qs] / 16);
      // Q5_K: qh[l] bit `sub` is the fifth bit.
      if (five) q += 16 * (Math.floor(bytes[block + 16 + l] / 2 ** sub) % 2);
      const step = f32(d * scale);
      const offset = f32(dmin * min);
      return { value: f32(f32(step * q) - offset), step, offset, qMin: 0, qMax: five ? 31 : 15 };
    }
    case 'Q6_K': {
      // struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }
      const block = 210 * Math.floor(v / 256);
      const r = v % 256;
      const half = Math.floor(r / 128);
      const group = Math.floor((r % 128) / 32);
      const l = r % 32;
      // ql: groups 0 and 2 share bytes [64 half, +32), groups 1 and 3 the next 32; groups 2, 3 use the high nibble.
      const qlByte = bytes[block + 64 * half + 32 * (group % 2) + l];
      const low = group < 2 ? qlByte % 16 : Math.floor(qlByte / 16);
      // qh byte 32 half + l holds the top 2 bits of the four groups, group g at bits 2g, 2g + 1.
      const high = Math.floor(bytes[block + 128 + 32 * half + l] / 4 ** group) % 4;
      const scale = int8(bytes[block + 192 + Math.floor(r / 16)]);
      const d = refHalf(bytes[block + 208], bytes[block + 209]);
      const step = f32(d * scale);
      return { value: f32(step * (low + 16 * high - 32)), step, offset: 0, qMin: -32, qMax: 31 };
    }
  }
}

export function refDequantize(format: RefFormat, bytes: Uint8Array, elements: number): Float32Array {
  const out = new Float32Array(elements);
  for (let v = 0; v < elements; v++) out[v] = refValue(format, bytes, v).value;
  return out;
}

/** The grid point of `ref`'s grid nearest to x (levels clamped to the grid's range). */
export function nearestOnGrid(ref: RefValue, x: number): number {
  if (ref.step === 0) return f32(-ref.offset);
  const q = Math.max(ref.qMin, Math.min(ref.qMax, Math.round((x + ref.offset) / ref.step)));
  return f32(f32(ref.step * q) - ref.offset);
}

/**
 * Q5_0 and Q5_1 (ggml `block_q5_0`, 22 bytes, and `block_q5_1`, 24 bytes, per 32 values): what
 * llama.cpp's quantize falls back to for Q4_K and Q5_K tensors whose rows are not a multiple of
 * 256 (SmolLM2's 576, stories260K's 64), so Q4_K_M and Q5_K_M files of such models are mostly
 * these. Layout: f16 d (Q5_1: then f16 m), 4 bytes qh whose bit j is the fifth bit of value j,
 * then 16 bytes whose low nibbles are values 0..15 and high nibbles values 16..31.
 * Q5_0: value = (q - 16) * d, d = -m / 16 for the block's value m of largest magnitude.
 * Q5_1: value = q * d + m, d = (max - min) / 31, m = min.
 * The quantizers round each value to the nearest point of the grid of the stored (f16) d and m.
 */
import { HALF_MAX, halfTable, toHalfBits } from './half';

const QK = 32;

function decode(bytes: Uint8Array, out: Float32Array, withMin: boolean): void {
  const half = halfTable();
  const size = withMin ? 24 : 22;
  const nb = out.length / QK;
  for (let b = 0; b < nb; b++) {
    const at = b * size;
    const d = half[bytes[at] | (bytes[at + 1] << 8)];
    const m = withMin ? half[bytes[at + 2] | (bytes[at + 3] << 8)] : 0;
    const h = at + (withMin ? 4 : 2);
    const qh = (bytes[h] | (bytes[h + 1] << 8) | (bytes[h + 2] << 16) | (bytes[h + 3] << 24)) >>> 0;
    const bias = withMin ? 0 : 16;
    for (let j = 0; j < QK / 2; j++) {
      const byte = bytes[h + 4 + j];
      const q0 = ((byte & 0x0f) | (((qh >>> j) & 1) << 4)) - bias;
      const q1 = ((byte >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - bias;
      // Q5_0 adds no m: 0 * d of a negative d must stay -0, as ggml's x0 * d gives.
      out[b * QK + j] = withMin ? q0 * d + m : q0 * d;
      out[b * QK + j + QK / 2] = withMin ? q1 * d + m : q1 * d;
    }
  }
}

function encode(x: Float32Array, withMin: boolean): Uint8Array {
  const nb = x.length / QK;
  const scales = new Float32Array(nb);
  const mins = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    const block = x.subarray(b * QK, (b + 1) * QK);
    if (withMin) {
      let lo = block[0];
      let hi = block[0];
      for (const v of block) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      scales[b] = Math.min((hi - lo) / 31, HALF_MAX);
      mins[b] = Math.max(-HALF_MAX, Math.min(HALF_MAX, lo));
    } else {
      let extreme = 0;
      for (const v of block) if (Math.abs(v) > Math.abs(extreme)) extreme = v;
      scales[b] = Math.max(-HALF_MAX, Math.min(HALF_MAX, extreme / -16));
    }
  }
  const dBits = toHalfBits(scales);
  const mBits = toHalfBits(mins);
  const half = halfTable();
  const size = withMin ? 24 : 22;
  const out = new Uint8Array(nb * size);
  for (let b = 0; b < nb; b++) {
    const at = b * size;
    out[at] = dBits[b] & 0xff;
    out[at + 1] = dBits[b] >> 8;
    if (withMin) {
      out[at + 2] = mBits[b] & 0xff;
      out[at + 3] = mBits[b] >> 8;
    }
    const d = half[dBits[b]];
    const m = withMin ? half[mBits[b]] : 0;
    const id = d !== 0 ? 1 / d : 0;
    const bias = withMin ? 0 : 16;
    const level = (v: number) => Math.max(0, Math.min(31, Math.round((v - m) * id) + bias));
    const h = at + (withMin ? 4 : 2);
    let qh = 0;
    for (let j = 0; j < QK / 2; j++) {
      const q0 = level(x[b * QK + j]);
      const q1 = level(x[b * QK + j + QK / 2]);
      out[h + 4 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + 16));
    }
    for (let i = 0; i < 4; i++) out[h + i] = (qh >>> (8 * i)) & 0xff;
  }
  return out;
}

export const dequantizeQ5_0 = (bytes: Uint8Array, out: Float32Array) => decode(bytes, out, false);
export const dequantizeQ5_1 = (bytes: Uint8Array, out: Float32Array) => decode(bytes, out, true);
export const quantizeQ5_0 = (x: Float32Array) => encode(x, false);
export const quantizeQ5_1 = (x: Float32Array) => encode(x, true);

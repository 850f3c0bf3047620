/**
 * Q8_0 (ggml `block_q8_0`, 34 bytes per 32 values): f16 scale d, then 32 int8 quants q;
 * value = q * d. Quantization: d = max|x| / 127 rounded to f16, q = round(x / d), so each value
 * lands on the nearest point of its block's grid and |error| <= d / 2.
 */
import { HALF_MAX, halfTable, toHalfBits } from './half';

const QK = 32;
const BLOCK = 34;

export function dequantizeQ8_0(bytes: Uint8Array, out: Float32Array): void {
  const half = halfTable();
  const nb = out.length / QK;
  for (let b = 0; b < nb; b++) {
    const at = b * BLOCK;
    const d = half[bytes[at] | (bytes[at + 1] << 8)];
    for (let j = 0; j < QK; j++) out[b * QK + j] = ((bytes[at + 2 + j] << 24) >> 24) * d;
  }
}

export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const scales = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
    scales[b] = Math.min(amax / 127, HALF_MAX);
  }
  const bits = toHalfBits(scales);
  const half = halfTable();
  const out = new Uint8Array(nb * BLOCK);
  for (let b = 0; b < nb; b++) {
    const at = b * BLOCK;
    out[at] = bits[b] & 0xff;
    out[at + 1] = bits[b] >> 8;
    const d = half[bits[b]];
    const id = d > 0 ? 1 / d : 0;
    for (let j = 0; j < QK; j++) {
      const q = Math.max(-127, Math.min(127, Math.round(x[b * QK + j] * id)));
      out[at + 2 + j] = q & 0xff;
    }
  }
  return out;
}

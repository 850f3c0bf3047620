/**
 * Q4_0 (ggml `block_q4_0`, 18 bytes per 32 values): f16 scale d, then 16 bytes whose low nibbles
 * are values 0..15 and high nibbles values 16..31; value = (nibble - 8) * d. Quantization as
 * ggml's reference: d = -m / 8 for the block's value m of largest magnitude (so m itself is exact
 * at nibble 0), nibble = clamp(round(x / d) + 8, 0, 15).
 */
import { HALF_MAX, halfTable, toHalfBits } from './half';

const QK = 32;
const BLOCK = 18;

export function dequantizeQ4_0(bytes: Uint8Array, out: Float32Array): void {
  const half = halfTable();
  const nb = out.length / QK;
  for (let b = 0; b < nb; b++) {
    const at = b * BLOCK;
    const d = half[bytes[at] | (bytes[at + 1] << 8)];
    for (let j = 0; j < QK / 2; j++) {
      const byte = bytes[at + 2 + j];
      out[b * QK + j] = ((byte & 0x0f) - 8) * d;
      out[b * QK + j + QK / 2] = ((byte >> 4) - 8) * d;
    }
  }
}

export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / QK;
  const scales = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let extreme = 0;
    for (let j = 0; j < QK; j++) if (Math.abs(x[b * QK + j]) > Math.abs(extreme)) extreme = x[b * QK + j];
    scales[b] = Math.max(-HALF_MAX, Math.min(HALF_MAX, extreme / -8));
  }
  const bits = toHalfBits(scales);
  const half = halfTable();
  const out = new Uint8Array(nb * BLOCK);
  for (let b = 0; b < nb; b++) {
    const at = b * BLOCK;
    out[at] = bits[b] & 0xff;
    out[at + 1] = bits[b] >> 8;
    const d = half[bits[b]];
    const id = d !== 0 ? 1 / d : 0;
    const nibble = (v: number) => Math.max(0, Math.min(15, Math.round(v * id) + 8));
    for (let j = 0; j < QK / 2; j++) out[at + 2 + j] = nibble(x[b * QK + j]) | (nibble(x[b * QK + j + QK / 2]) << 4);
  }
  return out;
}

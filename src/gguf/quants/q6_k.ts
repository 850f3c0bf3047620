/**
 * Q6_K (ggml `block_q6_K`, 210 bytes per 256 values): 128 bytes ql (low 4 bits), 64 bytes qh
 * (high 2 bits), 16 int8 sub-block scales, f16 d last; value = d * scale[v / 16] * (q - 32) with
 * q in [0, 63]. Each 128-value half n uses ql[64n ..], qh[32n ..]: for l < 32 and group g < 4,
 * value 128n + 32g + l has its low bits in ql[64n + 32(g & 1) + l] (high nibble when g >= 2) and
 * its high bits at 2g in qh[32n + l]. The quantizer fits each 16-value sub-block's scale by a
 * weighted search over grid stretches (the idea of ggml's `make_qx_quants`), rounds the scales to
 * int8 under d = -max / 128, and requantizes against the rounded grid.
 */
import { HALF_MAX, halfTable, toHalfBits } from './half';

const QK_K = 256;
const BLOCK = 210;
const QH = 128;
const SCALES = 192;
const D = 208;

export function dequantizeQ6_K(bytes: Uint8Array, out: Float32Array): void {
  const half = halfTable();
  const nb = out.length / QK_K;
  for (let b = 0; b < nb; b++) {
    const at = b * BLOCK;
    const d = half[bytes[at + D] | (bytes[at + D + 1] << 8)];
    const scale = (s: number) => Math.fround(d * ((bytes[at + SCALES + s] << 24) >> 24));
    for (let n = 0; n < 2; n++) {
      const ql = at + 64 * n;
      const qh = at + QH + 32 * n;
      const y = b * QK_K + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = 8 * n + (l >> 4);
        const h = bytes[qh + l];
        out[y + l] = scale(is) * ((bytes[ql + l] & 0x0f) + ((h & 3) << 4) - 32);
        out[y + 32 + l] = scale(is + 2) * ((bytes[ql + 32 + l] & 0x0f) + (((h >> 2) & 3) << 4) - 32);
        out[y + 64 + l] = scale(is + 4) * ((bytes[ql + l] >> 4) + (((h >> 4) & 3) << 4) - 32);
        out[y + 96 + l] = scale(is + 6) * ((bytes[ql + 32 + l] >> 4) + (((h >> 6) & 3) << 4) - 32);
      }
    }
  }
}

/** Best symmetric scale for 16 values on the grid scale * q, q in [-32, 31], weights x^2. */
function fitScale(x: Float32Array, at: number): number {
  let max = 0;
  for (let i = 0; i < 16; i++) if (Math.abs(x[at + i]) > Math.abs(max)) max = x[at + i];
  if (Math.abs(max) < 1e-15) return 0;
  const sums = (iscale: number) => {
    let sumLX = 0;
    let sumL2 = 0;
    for (let i = 0; i < 16; i++) {
      const v = x[at + i];
      const l = Math.max(-32, Math.min(31, Math.round(iscale * v)));
      sumLX += v * v * v * l;
      sumL2 += v * v * l * l;
    }
    return [sumLX, sumL2];
  };
  let [sumLX, sumL2] = sums(-32 / max);
  let scale = sumL2 > 0 ? sumLX / sumL2 : 0;
  let best = scale * sumLX;
  for (let step = -9; step <= 9; step++) {
    if (step === 0) continue;
    [sumLX, sumL2] = sums(-(32 + 0.1 * step) / max);
    if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
      scale = sumLX / sumL2;
      best = scale * sumLX;
    }
  }
  return scale;
}

export function quantizeQ6_K(x: Float32Array): Uint8Array {
  const nb = x.length / QK_K;
  const subScales = new Float64Array(nb * 16);
  const supers = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    let maxScale = 0;
    for (let s = 0; s < 16; s++) {
      const scale = fitScale(x, b * QK_K + 16 * s);
      subScales[b * 16 + s] = scale;
      if (Math.abs(scale) > Math.abs(maxScale)) maxScale = scale;
    }
    supers[b] = Math.max(-HALF_MAX, Math.min(HALF_MAX, maxScale / -128));
  }
  const bits = toHalfBits(supers);
  const half = halfTable();
  const out = new Uint8Array(nb * BLOCK);
  for (let b = 0; b < nb; b++) {
    const at = b * BLOCK;
    out[at + D] = bits[b] & 0xff;
    out[at + D + 1] = bits[b] >> 8;
    const d = half[bits[b]];
    for (let s = 0; s < 16; s++) {
      const sc = d !== 0 ? Math.max(-128, Math.min(127, Math.round(subScales[b * 16 + s] / d))) : 0;
      out[at + SCALES + s] = sc & 0xff;
      const step = Math.fround(d * sc);
      for (let i = 0; i < 16; i++) {
        const v = 16 * s + i;
        const q = step !== 0 ? Math.max(-32, Math.min(31, Math.round(x[b * QK_K + v] / step))) + 32 : 32;
        const n = v >> 7;
        const g = (v >> 5) & 3;
        const l = v & 31;
        out[at + 64 * n + 32 * (g & 1) + l] |= (q & 0x0f) << (4 * (g >> 1));
        out[at + QH + 32 * n + l] |= (q >> 4) << (2 * g);
      }
    }
  }
  return out;
}

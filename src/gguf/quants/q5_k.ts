/**
 * Q5_K (ggml `block_q5_K`, 176 bytes per 256 values): as Q4_K (f16 d, f16 dmin, 12 bytes of
 * scales and mins) plus a fifth bit per value: 32 bytes qh then 128 bytes of nibbles qs. In chunk
 * c (64 values), value 64c + l takes the low nibble of qs[32c + l] and bit 2c of qh[l]; value
 * 64c + 32 + l the high nibble and bit 2c + 1.
 */
import { halfTable } from './half';
import { QK_K, quantizeKWithMins, scaleMinK4 } from './k-scales';

const BLOCK = 176;
const QH = 16;
const QS = 48;

export function dequantizeQ5_K(bytes: Uint8Array, out: Float32Array): void {
  const half = halfTable();
  const nb = out.length / QK_K;
  for (let b = 0; b < nb; b++) {
    const at = b * BLOCK;
    const d = half[bytes[at] | (bytes[at + 1] << 8)];
    const dmin = half[bytes[at + 2] | (bytes[at + 3] << 8)];
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = scaleMinK4(2 * c, bytes, at + 4);
      const [sc2, m2] = scaleMinK4(2 * c + 1, bytes, at + 4);
      const d1 = Math.fround(d * sc1);
      const o1 = Math.fround(dmin * m1);
      const d2 = Math.fround(d * sc2);
      const o2 = Math.fround(dmin * m2);
      const y = b * QK_K + 64 * c;
      for (let l = 0; l < 32; l++) {
        const low = bytes[at + QS + 32 * c + l];
        const high = bytes[at + QH + l];
        out[y + l] = d1 * ((low & 0x0f) + (((high >> (2 * c)) & 1) << 4)) - o1;
        out[y + 32 + l] = d2 * ((low >> 4) + (((high >> (2 * c + 1)) & 1) << 4)) - o2;
      }
    }
  }
}

export function quantizeQ5_K(x: Float32Array): Uint8Array {
  return quantizeKWithMins(x, BLOCK, 31, { rmin: -0.5, rdelta: 0.1, nstep: 15 }, (out, at, q) => {
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const q1 = q[64 * c + l];
        const q2 = q[64 * c + 32 + l];
        out[at + QS + 32 * c + l] = (q1 & 0x0f) | ((q2 & 0x0f) << 4);
        out[at + QH + l] |= ((q1 >> 4) << (2 * c)) | ((q2 >> 4) << (2 * c + 1));
      }
    }
  });
}

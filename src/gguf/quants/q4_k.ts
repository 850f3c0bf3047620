/**
 * Q4_K (ggml `block_q4_K`, 144 bytes per 256 values): f16 d, f16 dmin, 12 bytes of 6-bit scales
 * and mins (k-scales.ts), then 128 bytes of nibbles. Values come in four 64-value chunks c; byte
 * 16 + 32c + l holds value 64c + l (sub-block 2c) in its low nibble and value 64c + 32 + l
 * (sub-block 2c + 1) in its high nibble.
 */
import { halfTable } from './half';
import { QK_K, quantizeKWithMins, scaleMinK4 } from './k-scales';

const BLOCK = 144;

export function dequantizeQ4_K(bytes: Uint8Array, out: Float32Array): void {
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
      const qs = at + 16 + 32 * c;
      const y = b * QK_K + 64 * c;
      for (let l = 0; l < 32; l++) {
        out[y + l] = d1 * (bytes[qs + l] & 0x0f) - o1;
        out[y + 32 + l] = d2 * (bytes[qs + l] >> 4) - o2;
      }
    }
  }
}

export function quantizeQ4_K(x: Float32Array): Uint8Array {
  return quantizeKWithMins(x, BLOCK, 15, { rmin: -1, rdelta: 0.1, nstep: 20 }, (out, at, q) => {
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) out[at + 16 + 32 * c + l] = q[64 * c + l] | (q[64 * c + 32 + l] << 4);
    }
  });
}

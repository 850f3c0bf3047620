import { ggmlType, type GgmlTypeName } from '../../src/gguf/ggml-types';
import { randomArray } from '../helpers/numeric';

/**
 * Awkward weights, block by block: roughly Gaussian, all zero, one outlier, all positive, all
 * negative, constant, tiny (scales near the f16 subnormal range) and large.
 */
export function awkwardValues(n: number, seed: number): Float32Array {
  const u = randomArray(4 * n, seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (u[4 * i] + u[4 * i + 1] + u[4 * i + 2] + u[4 * i + 3]) * 0.05;
  const kinds = 8;
  for (let block = 0; block < n / 32; block++) {
    const at = block * 32;
    const part = x.subarray(at, at + 32);
    switch (block % kinds) {
      case 1:
        part.fill(0);
        break;
      case 2:
        part[block % 32] = 3.5;
        break;
      case 3:
        for (const [i, v] of part.entries()) part[i] = Math.abs(v) + 0.01;
        break;
      case 4:
        for (const [i, v] of part.entries()) part[i] = -Math.abs(v) - 0.2;
        break;
      case 5:
        part.fill(-0.0625);
        break;
      case 6:
        for (const [i, v] of part.entries()) part[i] = v * 1e-6;
        break;
      case 7:
        for (const [i, v] of part.entries()) part[i] = v * 300;
        break;
    }
  }
  return x;
}

/** Random bytes with every f16 scale field replaced by a random finite half, so all quant bit patterns occur. */
export function randomBlocks(format: GgmlTypeName, blocks: number, seed: number): Uint8Array {
  const { blockBytes } = ggmlType(format);
  const u = randomArray(blocks * blockBytes, seed, 0, 256);
  const bytes = Uint8Array.from(u, Math.floor);
  const halfFields: Record<string, number[]> = { Q8_0: [0], Q4_0: [0], Q5_0: [0], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };
  for (let b = 0; b < blocks; b++) {
    for (const at of halfFields[format]) {
      // exponent 0..29 keeps the scale finite; sign, exponent and fraction otherwise random.
      const h = (bytes[b * blockBytes + at + 1] & 0x80) | (((b * 7 + at) % 30) << 2) | (bytes[b * blockBytes + at + 1] & 3);
      bytes[b * blockBytes + at + 1] = h;
    }
  }
  return bytes;
}

/**
 * IEEE half-precision scales of the block formats. Decoding goes through a 65536-entry table
 * built once from the safetensors F16 decoder; encoding rounds to nearest, ties to even (ggml's
 * GGML_FP32_TO_FP16) through the merge export's encoder, one whole array of scales at a time.
 */
import { encodeFloats } from '../../export/merge';
import { tensorToFloat32 } from '../../model/safetensors';

let table: Float32Array | null = null;

export function halfTable(): Float32Array {
  if (!table) {
    const all = new Uint16Array(65536);
    for (let i = 0; i < all.length; i++) all[i] = i;
    table = tensorToFloat32(new Uint8Array(all.buffer), 'F16', 'f16 table', 'all values');
  }
  return table;
}

/** The f16 value of little-endian bytes `at`, `at + 1`. */
export function readHalf(bytes: Uint8Array, at: number): number {
  return halfTable()[bytes[at] | (bytes[at + 1] << 8)];
}

/** f16 bit patterns of `values`, each rounded to nearest even. */
export function toHalfBits(values: Float32Array): Uint16Array {
  const bytes = encodeFloats(values, 'F16');
  return new Uint16Array(bytes.buffer, bytes.byteOffset, values.length);
}

/** Largest finite f16, the cap for scales so a block of huge values saturates instead of becoming infinite. */
export const HALF_MAX = 65504;

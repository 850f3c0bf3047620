import { blockGgmlType } from '../../src/gguf/block-formats';
import { toHalfBits } from '../../src/gguf/quants/half';
import { BLOCK_LAYOUTS, type BlockFormat } from '../../src/model/weight-format';
import { randomArray } from './numeric';

/** Byte offsets of each block format's f16 scales inside a block (ggml's layouts). */
const HALF_FIELDS: Record<BlockFormat, number[]> = {
  q8_0: [0],
  q4_0: [0],
  q5_0: [0],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
};

/**
 * `elements` values (whole blocks) of `format` as random blocks: every quant, sub-block scale and
 * min byte random, the f16 super-scales random finite values in ±`scale` (random bytes there could
 * be infinities or NaN). Returns the bytes and the GGUF type name for the CPU dequantizer.
 */
export function randomBlocks(
  format: BlockFormat,
  elements: number,
  seed: number,
  scale = 0.05,
): { bytes: Uint8Array; type: ReturnType<typeof blockGgmlType> } {
  const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
  const blocks = elements / blockSize;
  if (!Number.isInteger(blocks)) throw new RangeError(`${elements} values are not whole ${format} blocks`);
  const noise = randomArray(blocks * blockBytes, seed, 0, 256);
  const bytes = Uint8Array.from(noise, (v) => Math.min(255, Math.floor(v)));
  const fields = HALF_FIELDS[format];
  const halves = toHalfBits(randomArray(blocks * fields.length, seed + 1, -scale, scale));
  for (let b = 0; b < blocks; b++) {
    for (const [i, at] of fields.entries()) {
      const bits = halves[b * fields.length + i];
      bytes[b * blockBytes + at] = bits & 0xff;
      bytes[b * blockBytes + at + 1] = bits >> 8;
    }
  }
  return { bytes, type: blockGgmlType(format) };
}

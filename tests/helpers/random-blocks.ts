import { randomBlockBytes } from '../../src/bench/random-weights';
import { blockGgmlType } from '../../src/gguf/block-formats';
import type { GgmlTypeName } from '../../src/gguf/ggml-types';
import type { BlockFormat } from '../../src/model/weight-format';

/**
 * `elements` values (whole blocks) of `format` as random blocks (random quant bytes, finite random
 * f16 scales in ±`scale`) and the GGUF type name for the CPU dequantizer.
 */
export function randomBlocks(format: BlockFormat, elements: number, seed: number, scale = 0.05): { bytes: Uint8Array; type: GgmlTypeName } {
  return { bytes: randomBlockBytes(format, elements, seed, scale), type: blockGgmlType(format) };
}

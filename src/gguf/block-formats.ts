/**
 * Which GGUF tensor types stay quantized on the GPU: a block format of src/model/weight-format.ts
 * is ggml's type of the same name. Every block type webtune reads has one.
 */
import type { BlockFormat } from '../model/weight-format';
import type { GgmlTypeName } from './ggml-types';

const BY_TYPE: Partial<Record<GgmlTypeName, BlockFormat>> = {
  Q8_0: 'q8_0',
  Q4_0: 'q4_0',
  Q5_0: 'q5_0',
  Q5_1: 'q5_1',
  Q4_K: 'q4_k',
  Q5_K: 'q5_k',
  Q6_K: 'q6_k',
};

/** The block format a GGUF tensor type keeps on the GPU, or null when it is a float or has no GPU decoder. */
export function gpuBlockFormat(type: GgmlTypeName): BlockFormat | null {
  return BY_TYPE[type] ?? null;
}

/** The GGUF type of a block format. */
export function blockGgmlType(format: BlockFormat): GgmlTypeName {
  return format.toUpperCase() as GgmlTypeName;
}

/**
 * ggml tensor types as GGUF files name them: the type id stored in each tensor info, how many
 * values one block holds and how many bytes it takes (ggml's `type_traits`). The reader needs
 * every known type's sizes to validate a file's layout, even for the types webtune cannot
 * dequantize; ids missing here are unknown to webtune and refused.
 */

export interface GgmlTypeInfo {
  id: number;
  name: string;
  /** Values per block (1 for plain numbers). A row's length must be a multiple of it. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

const TABLE: [id: number, name: string, blockSize: number, blockBytes: number][] = [
  [0, 'F32', 1, 4],
  [1, 'F16', 1, 2],
  [2, 'Q4_0', 32, 18],
  [3, 'Q4_1', 32, 20],
  [6, 'Q5_0', 32, 22],
  [7, 'Q5_1', 32, 24],
  [8, 'Q8_0', 32, 34],
  [9, 'Q8_1', 32, 36],
  [10, 'Q2_K', 256, 84],
  [11, 'Q3_K', 256, 110],
  [12, 'Q4_K', 256, 144],
  [13, 'Q5_K', 256, 176],
  [14, 'Q6_K', 256, 210],
  [15, 'Q8_K', 256, 292],
  [16, 'IQ2_XXS', 256, 66],
  [17, 'IQ2_XS', 256, 74],
  [18, 'IQ3_XXS', 256, 98],
  [19, 'IQ1_S', 256, 50],
  [20, 'IQ4_NL', 32, 18],
  [21, 'IQ3_S', 256, 110],
  [22, 'IQ2_S', 256, 82],
  [23, 'IQ4_XS', 256, 136],
  [24, 'I8', 1, 1],
  [25, 'I16', 1, 2],
  [26, 'I32', 1, 4],
  [27, 'I64', 1, 8],
  [28, 'F64', 1, 8],
  [29, 'IQ1_M', 256, 56],
  [30, 'BF16', 1, 2],
  [34, 'TQ1_0', 256, 54],
  [35, 'TQ2_0', 256, 66],
  [39, 'MXFP4', 32, 17],
  [40, 'NVFP4', 64, 36],
  [41, 'Q1_0', 128, 18],
  [42, 'Q2_0', 64, 18],
];

const BY_ID = new Map<number, GgmlTypeInfo>(TABLE.map(([id, name, blockSize, blockBytes]) => [id, { id, name, blockSize, blockBytes }]));
const BY_NAME = new Map<string, GgmlTypeInfo>([...BY_ID.values()].map((t) => [t.name, t]));

/** The types webtune reads (dequantizes) and, for some, writes. */
export type GgmlTypeName = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q5_0' | 'Q5_1' | 'Q4_K' | 'Q5_K' | 'Q6_K';
export const SUPPORTED_GGML_TYPES: readonly GgmlTypeName[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

export function ggmlType(name: GgmlTypeName): GgmlTypeInfo {
  return BY_NAME.get(name)!;
}

export function isSupportedGgmlType(name: string): name is GgmlTypeName {
  return (SUPPORTED_GGML_TYPES as readonly string[]).includes(name);
}

/** Bytes of `elements` values of a type; `elements` must be a whole number of blocks. */
export function ggmlByteSize(type: GgmlTypeInfo, elements: number): number {
  return (elements / type.blockSize) * type.blockBytes;
}

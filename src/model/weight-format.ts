/**
 * How a frozen weight matrix is stored on the GPU: the one definition that the kernels reading
 * weights (matmul, embedding, the lm_head of the cross-entropy) and the uploader
 * (src/model/gpu-weights.ts) share.
 *
 * A matrix [rows, cols] is row-major; element e = row * cols + col, counted from the start of its
 * binding (the wrappers turn byte offsets into element offsets).
 * - 'f32': `array<f32>`, element e at index e.
 * - 'bf16', 'f16': `array<u32>` of 16-bit values packed two per word: element e in word e >> 1, in
 *   the low 16 bits when e is even and the high 16 bits when it is odd. That is the byte order of a
 *   little-endian 16-bit tensor (safetensors BF16 and F16), so a checkpoint's bytes go to the GPU as
 *   they are. When cols is odd a row starts in the middle of a word: kernels address elements, never
 *   rows of words. A buffer is padded to whole words.
 * - Block formats ('q8_0', 'q4_0', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'; ggml's blocks, src/gguf/quants): a
 *   GGUF tensor's bytes as stored, `array<u32>` padded to whole words. A row of cols values is
 *   cols / blockSize blocks of blockBytes bytes each (34, 18, 22, 24, 144, 176, 210: most are not whole
 *   words, so the decoder reads bytes out of words by byte offset); element e is value e % blockSize
 *   of block e / blockSize. Rows are whole blocks, so a matrix binding starts at a block.
 * Kernels widen each value to f32 (bf16: the 16 bits become the high half of an f32; f16:
 * unpack2x16float; block formats: shaders/weight-blocks.wgsl decodes one element from its block's
 * scales and quants) and accumulate in f32, so no adapter feature (shader-f16) is needed.
 *
 * Only the matrices read through matmul, the embedding lookup and the lm_head take a format. Norm
 * weights and q/k/v biases stay f32: they are a few thousand values per layer, read by kernels
 * that have no format axis. LoRA weights, gradients, optimizer state and activations are f32.
 *
 * A new float format is one more member of FloatFormat, one more branch in shaders/weight-format.wgsl
 * and the shaders' `#if` blocks, and one more encoder here; a new block format one more member of
 * BlockFormat and BLOCK_LAYOUTS, one more decoder in shaders/weight-blocks.wgsl and its GGUF type
 * in src/gguf/block-formats.ts.
 */
import { WeightRangeError } from './errors';
import { tensorToFloat32 } from './safetensors';

/** The formats a user may ask for: every weight matrix converted to it on the CPU. */
export type FloatFormat = 'f32' | 'bf16' | 'f16';
export const WEIGHT_FORMATS: readonly FloatFormat[] = ['f32', 'bf16', 'f16'];
/** GGUF block formats that stay quantized on the GPU (ggml's block layouts, lower-cased). */
export type BlockFormat = 'q8_0' | 'q4_0' | 'q5_0' | 'q5_1' | 'q4_k' | 'q5_k' | 'q6_k';
export const BLOCK_FORMATS: readonly BlockFormat[] = ['q8_0', 'q4_0', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'];
export type WeightFormat = FloatFormat | BlockFormat;

/** Values per block and bytes per block of each block format (ggml's type traits). */
export const BLOCK_LAYOUTS: Readonly<Record<BlockFormat, { blockSize: number; blockBytes: number }>> = {
  q8_0: { blockSize: 32, blockBytes: 34 },
  q4_0: { blockSize: 32, blockBytes: 18 },
  q5_0: { blockSize: 32, blockBytes: 22 },
  q5_1: { blockSize: 32, blockBytes: 24 },
  q4_k: { blockSize: 256, blockBytes: 144 },
  q5_k: { blockSize: 256, blockBytes: 176 },
  q6_k: { blockSize: 256, blockBytes: 210 },
};

/** What a user asks for: one format for every weight matrix, or 'auto' (each tensor keeps its checkpoint dtype or block format). */
export type WeightPrecision = 'auto' | FloatFormat;
export const WEIGHT_PRECISIONS: readonly WeightPrecision[] = ['auto', ...WEIGHT_FORMATS];

/** The weight dtypes a checkpoint may hold (safetensors names). */
export type CheckpointDtype = 'F32' | 'F16' | 'BF16';

/** One tensor's bytes exactly as the checkpoint stores them (little-endian). */
export interface RawTensor {
  dtype: CheckpointDtype;
  bytes: Uint8Array;
  /** The file it was read from, for error messages. */
  file?: string;
}

/** The largest finite float16 value; anything larger in magnitude cannot be stored as f16. */
export const F16_MAX = 65504;

export function isWeightPrecision(value: unknown): value is WeightPrecision {
  return typeof value === 'string' && (WEIGHT_PRECISIONS as readonly string[]).includes(value);
}

export function isBlockFormat(format: WeightFormat): format is BlockFormat {
  return (BLOCK_FORMATS as readonly string[]).includes(format);
}

/** Bytes per value of a float format. */
export function bytesPerWeight(format: FloatFormat): number {
  return format === 'f32' ? 4 : 2;
}

/** Bytes of `elements` consecutive values of `format` (whole blocks for a block format), before padding to words. */
export function storedBytes(format: WeightFormat, elements: number): number {
  if (!isBlockFormat(format)) return elements * bytesPerWeight(format);
  const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
  if (elements % blockSize !== 0) throw new RangeError(`${format}: ${elements} values are not whole blocks of ${blockSize}`);
  return (elements / blockSize) * blockBytes;
}

/** Bytes of a binding that holds `elements` values of `format`: whole u32 words. */
export function packedBytes(format: WeightFormat, elements: number): number {
  return Math.ceil(storedBytes(format, elements) / 4) * 4;
}

/** The format a checkpoint dtype keeps under 'auto'. */
export function dtypeFormat(dtype: CheckpointDtype): FloatFormat {
  return dtype === 'F32' ? 'f32' : dtype === 'BF16' ? 'bf16' : 'f16';
}

/** The format a matrix stored as `dtype` gets on the GPU under `precision`. */
export function chosenFormat(dtype: CheckpointDtype, precision: WeightPrecision): FloatFormat {
  return precision === 'auto' ? dtypeFormat(dtype) : precision;
}

/**
 * The tensor in `format`'s packed layout, ready for upload. Same dtype and format: the checkpoint's
 * bytes, viewed without a copy where they are word-aligned. F16/BF16 to f32 is exact. F32 or F16 to
 * bf16 and F32 or BF16 to f16 round to nearest even; a value beyond the f16 range throws
 * WeightRangeError naming the tensor, since rounding it to infinity would break the model silently.
 * `firstElement` is where `raw` starts in the whole tensor (a vocabulary piece), for that message.
 */
export function encodeWeights(raw: RawTensor, format: FloatFormat, file: string, tensor: string, firstElement = 0): Uint32Array {
  if (format === dtypeFormat(raw.dtype)) return asWords(raw.bytes);
  const values = tensorToFloat32(raw.bytes, raw.dtype, file, tensor);
  if (format === 'f32') return new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(packedBytes(format, values.length) / 2);
  if (format === 'bf16') {
    for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16(bits[i]);
  } else {
    for (let i = 0; i < bits.length; i++) {
      if (Math.abs(values[i]) > F16_MAX) throw new WeightRangeError(file, tensor, values[i], firstElement + i);
      out[i] = f32BitsToF16(bits[i]);
    }
  }
  return new Uint32Array(out.buffer);
}

/** The bytes as u32 words: a view when aligned and whole, else a zero-padded copy. */
export function asWords(bytes: Uint8Array): Uint32Array {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) {
    return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  return new Uint32Array(padded.buffer);
}

/** bf16 bits of an f32, rounded to nearest even on the 16 dropped bits; NaN stays a quiet NaN. */
export function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) & 0x8000) | 0x7fc0;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** f16 bits of an f32, rounded to nearest even (subnormals included); too large a magnitude becomes infinity. */
export function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal f16: the 24-bit significand shifted right, rounded to nearest even; below
    // half the smallest subnormal everything rounds to zero.
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    const halfway = 1 << (shift - 1);
    const rest = full & ((1 << shift) - 1);
    let m = full >>> shift;
    if (rest > halfway || (rest === halfway && m & 1)) m++;
    return sign | m;
  }
  let m = mantissa >>> 13;
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) m++;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | ((e << 10) + m);
}

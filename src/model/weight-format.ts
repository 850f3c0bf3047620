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
 * Kernels widen each value to f32 (bf16: the 16 bits become the high half of an f32; f16:
 * unpack2x16float) and accumulate in f32, so no adapter feature (shader-f16) is needed.
 *
 * Only the matrices read through matmul, the embedding lookup and the lm_head take a format. Norm
 * weights and q/k/v biases stay f32: they are a few thousand values per layer, read by kernels
 * that have no format axis. LoRA weights, gradients, optimizer state and activations are f32.
 *
 * A new format (the GGUF block formats) is one more member of WeightFormat, one more branch in
 * shaders/weight-format.wgsl and the shaders' `#if` blocks, and one more encoder here.
 */
import { WeightRangeError } from './errors';
import { tensorToFloat32 } from './safetensors';

export type WeightFormat = 'f32' | 'bf16' | 'f16';
export const WEIGHT_FORMATS: readonly WeightFormat[] = ['f32', 'bf16', 'f16'];

/** What a user asks for: one format for every weight matrix, or 'auto' (each tensor keeps its checkpoint dtype). */
export type WeightPrecision = 'auto' | WeightFormat;
export const WEIGHT_PRECISIONS: readonly WeightPrecision[] = ['auto', ...WEIGHT_FORMATS];

/** The weight dtypes a checkpoint may hold (safetensors names). */
export type CheckpointDtype = 'F32' | 'F16' | 'BF16';

/** One tensor's bytes exactly as the checkpoint stores them (little-endian). */
export interface RawTensor {
  dtype: CheckpointDtype;
  bytes: Uint8Array;
}

/** The largest finite float16 value; anything larger in magnitude cannot be stored as f16. */
export const F16_MAX = 65504;

export function isWeightPrecision(value: unknown): value is WeightPrecision {
  return typeof value === 'string' && (WEIGHT_PRECISIONS as readonly string[]).includes(value);
}

export function bytesPerWeight(format: WeightFormat): number {
  return format === 'f32' ? 4 : 2;
}

/** Bytes of a binding that holds `elements` values of `format`: whole u32 words. */
export function packedBytes(format: WeightFormat, elements: number): number {
  return Math.ceil((elements * bytesPerWeight(format)) / 4) * 4;
}

/** The format a checkpoint dtype keeps under 'auto'. */
export function dtypeFormat(dtype: CheckpointDtype): WeightFormat {
  return dtype === 'F32' ? 'f32' : dtype === 'BF16' ? 'bf16' : 'f16';
}

/** The format a matrix stored as `dtype` gets on the GPU under `precision`. */
export function chosenFormat(dtype: CheckpointDtype, precision: WeightPrecision): WeightFormat {
  return precision === 'auto' ? dtypeFormat(dtype) : precision;
}

/**
 * The tensor in `format`'s packed layout, ready for upload. Same dtype and format: the checkpoint's
 * bytes, viewed without a copy where they are word-aligned. F16/BF16 to f32 is exact. F32 or F16 to
 * bf16 and F32 or BF16 to f16 round to nearest even; a value beyond the f16 range throws
 * WeightRangeError naming the tensor, since rounding it to infinity would break the model silently.
 */
export function encodeWeights(raw: RawTensor, format: WeightFormat, file: string, tensor: string): Uint32Array {
  if (format === dtypeFormat(raw.dtype)) return words(raw.bytes);
  const values = tensorToFloat32(raw.bytes, raw.dtype, file, tensor);
  if (format === 'f32') return new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(packedBytes(format, values.length) / 2);
  if (format === 'bf16') {
    for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16(bits[i]);
  } else {
    for (let i = 0; i < bits.length; i++) {
      if (Math.abs(values[i]) > F16_MAX) throw new WeightRangeError(file, tensor, values[i], i);
      out[i] = f32BitsToF16(bits[i], values[i]);
    }
  }
  return new Uint32Array(out.buffer);
}

/** The bytes as u32 words: a view when aligned and whole, else a zero-padded copy. */
function words(bytes: Uint8Array): Uint32Array {
  if (bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) {
    return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  return new Uint32Array(padded.buffer);
}

/** Round to nearest even on the 16 dropped bits; NaN stays a (quiet) NaN. */
function f32BitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** Round to nearest even; the caller has refused magnitudes above F16_MAX (infinities included). */
function f32BitsToF16(bits: number, value: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;
  // Below 2^-14, f16 is fixed point with a step of 2^-24; the scaled magnitude is exact in float64,
  // and a subnormal that rounds up to 2^-14 lands on the smallest normal's bits by itself.
  if (abs < 0x38800000) return sign | roundHalfEven(Math.abs(value) * 2 ** 24);
  const exponent = (abs >>> 23) - 127 + 15;
  const mantissa = abs & 0x7fffff;
  let half = (exponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const frac = x - floor;
  if (frac > 0.5) return floor + 1;
  if (frac < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

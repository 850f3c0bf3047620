/**
 * Block formats by name: dequantization of every type webtune reads to f32, and the quantizers
 * (Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) and float encoders the GGUF writer uses. A block never spans
 * two rows, so quantizing needs rows whose length is a whole number of blocks.
 */
import { encodeFloats } from '../../export/merge';
import { tensorToFloat32 } from '../../model/safetensors';
import { ggmlByteSize, ggmlType, type GgmlTypeName } from '../ggml-types';
import { dequantizeQ4_0, quantizeQ4_0 } from './q4_0';
import { dequantizeQ5_0, dequantizeQ5_1, quantizeQ5_0, quantizeQ5_1 } from './q5_0';
import { dequantizeQ4_K, quantizeQ4_K } from './q4_k';
import { dequantizeQ5_K, quantizeQ5_K } from './q5_k';
import { dequantizeQ6_K, quantizeQ6_K } from './q6_k';
import { dequantizeQ8_0, quantizeQ8_0 } from './q8_0';

/** A tensor whose rows cannot be stored in a block format, or values that cannot be quantized. */
export class QuantizationError extends Error {
  override name = 'QuantizationError';
}

const BLOCK_DECODERS: Partial<Record<GgmlTypeName, (bytes: Uint8Array, out: Float32Array) => void>> = {
  Q8_0: dequantizeQ8_0,
  Q4_0: dequantizeQ4_0,
  Q5_0: dequantizeQ5_0,
  Q5_1: dequantizeQ5_1,
  Q4_K: dequantizeQ4_K,
  Q5_K: dequantizeQ5_K,
  Q6_K: dequantizeQ6_K,
};

const BLOCK_ENCODERS: Partial<Record<GgmlTypeName, (values: Float32Array) => Uint8Array>> = {
  Q8_0: quantizeQ8_0,
  Q4_0: quantizeQ4_0,
  Q5_0: quantizeQ5_0,
  Q5_1: quantizeQ5_1,
  Q4_K: quantizeQ4_K,
  Q5_K: quantizeQ5_K,
  Q6_K: quantizeQ6_K,
};

/** `elements` values stored as `type` in `bytes` (exactly their size), as f32. */
export function dequantize(type: GgmlTypeName, bytes: Uint8Array, elements: number): Float32Array {
  const info = ggmlType(type);
  if (elements % info.blockSize !== 0 || bytes.length !== ggmlByteSize(info, elements)) {
    throw new RangeError(`dequantize ${type}: ${bytes.length} bytes do not hold ${elements} values`);
  }
  if (type === 'F32' || type === 'F16' || type === 'BF16') return tensorToFloat32(bytes, type, type, 'tensor');
  const out = new Float32Array(elements);
  BLOCK_DECODERS[type]!(bytes, out);
  return out;
}

/** Whether rows of `rowLength` values can be stored as `type` (a whole number of blocks). */
export function fitsBlocks(type: GgmlTypeName, rowLength: number): boolean {
  return rowLength % ggmlType(type).blockSize === 0;
}

/**
 * `values` (rows of `rowLength`) stored as `type`: floats rounded to nearest even, block formats
 * quantized block by block.
 */
export function quantize(type: GgmlTypeName, values: Float32Array, rowLength: number): Uint8Array {
  if (!Number.isSafeInteger(rowLength) || rowLength <= 0 || values.length % rowLength !== 0) {
    throw new RangeError(`quantize ${type}: ${values.length} values are not whole rows of ${rowLength}`);
  }
  if (type === 'F32' || type === 'F16' || type === 'BF16') return encodeFloats(values, type);
  const { blockSize } = ggmlType(type);
  if (rowLength % blockSize !== 0) {
    throw new QuantizationError(
      `Cannot store rows of ${rowLength} values as ${type}: its blocks hold ${blockSize} values, so a row must be a multiple of ` +
        `${blockSize}. Keep this tensor as F16 or F32.`,
    );
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new QuantizationError(`Cannot quantize to ${type}: value ${i} is ${values[i]}; the weights must be finite.`);
    }
  }
  const encode = BLOCK_ENCODERS[type];
  if (!encode) throw new QuantizationError(`webtune has no quantizer for ${type}.`);
  return encode(values);
}

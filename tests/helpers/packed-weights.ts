import { encodeWeights, type FloatFormat } from '../../src/model/weight-format';

/** f32 weights as the engine stores them in `format` (the upload path's encoder), ready for checkOp inputs. */
export function packWeights(values: Float32Array, format: FloatFormat): Uint32Array {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return encodeWeights({ dtype: 'F32', bytes }, format, 'test', 'weights');
}

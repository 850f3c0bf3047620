import decode from '../../shaders/weight-format.wgsl?raw';
import { preprocessShader } from '../gpu/preprocess';
import type { WeightFormat } from '../model/weight-format';

const variants = new Map<string, Map<WeightFormat, string>>();

/**
 * The variant of a shader that reads its weight matrices in `format`: the shader and
 * shaders/weight-format.wgsl, preprocessed with the flags F32, BF16 and F16 (one of them true).
 * Cached, so each variant is one string and Gpu.kernel compiles it once per device.
 */
export function weightShader(source: string, format: WeightFormat): string {
  let bySource = variants.get(source);
  if (!bySource) variants.set(source, (bySource = new Map()));
  let variant = bySource.get(format);
  if (variant === undefined) {
    const flags = { F32: format === 'f32', BF16: format === 'bf16', F16: format === 'f16' };
    variant = preprocessShader(`${source}\n${decode}`, flags);
    bySource.set(format, variant);
  }
  return variant;
}

import decode from '../../shaders/weight-format.wgsl?raw';
import blocks from '../../shaders/weight-blocks.wgsl?raw';
import { preprocessShader } from '../gpu/preprocess';
import { BLOCK_FORMATS, isBlockFormat, type WeightFormat } from '../model/weight-format';

const variants = new Map<string, Map<WeightFormat, string>>();

/**
 * The variant of a shader that reads its weight matrices in `format`: the shader and
 * shaders/weight-format.wgsl (and, for a block format, shaders/weight-blocks.wgsl), preprocessed
 * with the flags F32, BF16, F16, BLOCK (any block format) and one per block format (Q8_0, Q4_K...),
 * exactly those of `format` true. Cached, so each variant is one string and Gpu.kernel compiles it
 * once per device.
 */
export function weightShader(source: string, format: WeightFormat): string {
  let bySource = variants.get(source);
  if (!bySource) variants.set(source, (bySource = new Map()));
  let variant = bySource.get(format);
  if (variant === undefined) {
    const block = isBlockFormat(format);
    const flags: Record<string, boolean> = { F32: format === 'f32', BF16: format === 'bf16', F16: format === 'f16', BLOCK: block };
    for (const f of BLOCK_FORMATS) flags[f.toUpperCase()] = format === f;
    variant = preprocessShader(block ? `${source}\n${decode}\n${blocks}` : `${source}\n${decode}`, flags);
    bySource.set(format, variant);
  }
  return variant;
}

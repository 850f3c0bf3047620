import type { ModelConfig } from '../model/config';
import type { LoraConfig, LoraTarget } from './config';

/** Storage offsets must be multiples of 256 bytes to bind a sub-range. */
const ALIGN_FLOATS = 64;
const align = (n: number) => Math.ceil(n / ALIGN_FLOATS) * ALIGN_FLOATS;

export interface LoraModule {
  layer: number;
  target: LoraTarget;
  inFeatures: number;
  outFeatures: number;
  /** Float offsets of A [r, in] and B [out, r] inside the flat parameter buffer. */
  aOffset: number;
  bOffset: number;
}

/** Where every adapter tensor lives in one flat buffer, so clipping and AdamW are one dispatch. */
export interface LoraLayout {
  r: number;
  modules: LoraModule[];
  totalFloats: number;
}

export function projectionShape(config: ModelConfig, target: LoraTarget): { inFeatures: number; outFeatures: number } {
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  switch (target) {
    case 'q_proj':
      return { inFeatures: C, outFeatures: qDim };
    case 'k_proj':
    case 'v_proj':
      return { inFeatures: C, outFeatures: kvDim };
    case 'o_proj':
      return { inFeatures: qDim, outFeatures: C };
    case 'gate_proj':
    case 'up_proj':
      return { inFeatures: C, outFeatures: config.intermediateSize };
    case 'down_proj':
      return { inFeatures: config.intermediateSize, outFeatures: C };
  }
}

export function planLoraLayout(model: ModelConfig, lora: LoraConfig): LoraLayout {
  const modules: LoraModule[] = [];
  let offset = 0;
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const target of lora.targets) {
      const { inFeatures, outFeatures } = projectionShape(model, target);
      const aOffset = offset;
      offset = align(offset + lora.r * inFeatures);
      const bOffset = offset;
      offset = align(offset + outFeatures * lora.r);
      modules.push({ layer, target, inFeatures, outFeatures, aOffset, bOffset });
    }
  }
  return { r: lora.r, modules, totalFloats: Math.max(offset, ALIGN_FLOATS) };
}

/** PEFT's tensor name for one adapter matrix. */
export function peftTensorName(module: Pick<LoraModule, 'layer' | 'target'>, matrix: 'A' | 'B'): string {
  const block = ['gate_proj', 'up_proj', 'down_proj'].includes(module.target) ? 'mlp' : 'self_attn';
  return `base_model.model.model.layers.${module.layer}.${block}.${module.target}.lora_${matrix}.weight`;
}

import { seededUniform } from '../util/random';
import type { LoraLayout } from './layout';

/**
 * PEFT's default initialisation: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)),
 * B = 0, so the adapted model starts exactly equal to the base model.
 */
export function peftInitialParams(layout: LoraLayout, seed: number): Float32Array {
  const params = new Float32Array(layout.totalFloats);
  const uniform = seededUniform(seed);
  for (const module of layout.modules) {
    const bound = 1 / Math.sqrt(module.inFeatures);
    const count = layout.r * module.inFeatures;
    for (let i = 0; i < count; i++) params[module.aOffset + i] = (2 * uniform() - 1) * bound;
  }
  return params;
}

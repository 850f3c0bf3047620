import type { LoraLayout } from './layout';

/** Small seeded generator (mulberry32) so an adapter's initialisation is reproducible. */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

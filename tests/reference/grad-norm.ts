/** float64 reference of clip_grad_norm_: the global L2 norm and min(1, maxNorm / (norm + 1e-6)). */
export function gradNormClipRef(g: Float64Array, maxNorm: number): { norm: number; coef: number } {
  let sum = 0;
  for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  const norm = Math.sqrt(sum);
  const clips = maxNorm > 0 && Number.isFinite(maxNorm);
  return { norm, coef: clips ? Math.min(1, maxNorm / (norm + 1e-6)) : 1 };
}

export interface RopeShape {
  M: number;
  T: number;
  nHeads: number;
  headDim: number;
  theta: number;
  positionOffset: number;
}

/**
 * float64 reference of HF Llama's half-split RoPE on x [M, nHeads * headDim], rotating by
 * `direction` * angle (-1 is the backward). With `hfFloat32Angles`, inv_freq and the angle are rounded
 * to f32 step by step as transformers does in PyTorch, so the only remaining difference from HF is
 * the rounding of cos, sin and the products; without it everything is exact float64.
 */
export function ropeRef(
  x: Float64Array,
  { M, T, nHeads, headDim, theta, positionOffset }: RopeShape,
  { direction = 1, hfFloat32Angles = false }: { direction?: 1 | -1; hfFloat32Angles?: boolean } = {},
): Float64Array {
  const round = hfFloat32Angles ? Math.fround : (v: number) => v;
  const half = headDim / 2;
  const y = new Float64Array(x);
  for (let m = 0; m < M; m++) {
    const pos = (m % T) + positionOffset;
    for (let h = 0; h < nHeads; h++) {
      const base = (m * nHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const invFreq = round(1 / round(round(theta) ** round((2 * i) / headDim)));
        const angle = round(pos * invFreq);
        const cos = Math.cos(angle);
        const sin = direction * Math.sin(angle);
        const a = x[base + i];
        const b = x[base + i + half];
        y[base + i] = a * cos - b * sin;
        y[base + i + half] = b * cos + a * sin;
      }
    }
  }
  return y;
}

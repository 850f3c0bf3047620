/** Llama 3's frequency-dependent scaling of the RoPE inverse frequencies (rope_type "llama3"). */
export interface RopeScalingRef {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface RopeShape {
  M: number;
  T: number;
  nHeads: number;
  headDim: number;
  theta: number;
  positionOffset: number;
  /** Absent or null: plain RoPE. */
  scaling?: RopeScalingRef | null;
}

/**
 * Inverse frequency of rotation pair i. Plain: theta^(-2i/d). Llama 3 scaling, from the wavelength
 * w = 2 pi / f of each frequency: w < original / high_freq_factor keeps f (high frequencies), w >
 * original / low_freq_factor uses f / factor (low frequencies), and in between
 * (1 - s) f / factor + s f with s = (original / w - low_freq_factor) / (high_freq_factor - low_freq_factor).
 * `round` is applied after every operation (Math.fround emulates PyTorch's f32, which computes a
 * scalar divided by a tensor as the reciprocal times the scalar); the identity gives exact float64.
 */
export function ropeInvFreqRef(
  i: number,
  headDim: number,
  theta: number,
  scaling: RopeScalingRef | null | undefined,
  round = (v: number) => v,
): number {
  const f = round(1 / round(round(theta) ** round((2 * i) / headDim)));
  if (!scaling) return f;
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: original } = scaling;
  const wavelength = round(round(1 / f) * round(2 * Math.PI));
  if (wavelength < round(original / high)) return f;
  if (wavelength > round(original / low)) return round(f / round(factor));
  const s = round(round(round(round(1 / wavelength) * round(original)) - round(low)) / round(high - low));
  return round(round(round(round(1 - s) * f) / round(factor)) + round(s * f));
}

/**
 * float64 reference of HF Llama's half-split RoPE on x [M, nHeads * headDim], rotating by
 * `direction` * angle (-1 is the backward). With `hfFloat32Angles`, inv_freq and the angle are rounded
 * to f32 step by step as transformers does in PyTorch, so the only remaining difference from HF is
 * the rounding of cos, sin and the products; without it everything is exact float64.
 */
export function ropeRef(
  x: Float64Array,
  { M, T, nHeads, headDim, theta, positionOffset, scaling }: RopeShape,
  { direction = 1, hfFloat32Angles = false }: { direction?: 1 | -1; hfFloat32Angles?: boolean } = {},
): Float64Array {
  const round = hfFloat32Angles ? Math.fround : (v: number) => v;
  const half = headDim / 2;
  const invFreq = Array.from({ length: half }, (_, i) => ropeInvFreqRef(i, headDim, theta, scaling, round));
  const y = new Float64Array(x);
  for (let m = 0; m < M; m++) {
    const pos = (m % T) + positionOffset;
    for (let h = 0; h < nHeads; h++) {
      const base = (m * nHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const angle = round(pos * invFreq[i]);
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

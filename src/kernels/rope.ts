import source from '../../shaders/rope.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';
import type { RopeScaling } from '../model/config';

const WG = 256;
/** The shader's angle reduction is exact only for angles below 2^16 * pi/2, and angle <= position. */
const MAX_POSITION = 100_000;

const invFreqTables = new WeakMap<Gpu, Map<string, GPUBuffer>>();

/** RoPE settings of a model: the base frequency and Llama 3's scaling, if any. */
export interface RopeOptions {
  theta: number;
  scaling?: RopeScaling | null;
}

const f32 = Math.fround;

/**
 * inv_freq = 1 / theta^(arange(0, d, 2) / d) with every step rounded to f32, as transformers computes
 * it in PyTorch. Done here in float64 and rounded because WGSL's pow is only accurate to a few ulp,
 * and an inv_freq ulp times a position of a few thousand is a visible angle error.
 * With llama3 scaling, transformers' _compute_llama3_parameters on that table, again op by op in f32
 * as PyTorch evaluates it (a scalar divided by a tensor is the tensor's reciprocal times the scalar):
 * wavelengths 2 pi / inv_freq above original / low_freq_factor get inv_freq / factor, those below
 * original / high_freq_factor keep inv_freq, and those in between the blend
 * (1 - s) inv_freq / factor + s inv_freq with s = (original / wavelength - low) / (high - low).
 */
export function ropeInvFreq(headDim: number, { theta, scaling }: RopeOptions): Float32Array {
  const base = f32(theta);
  const invFreq = new Float32Array(headDim / 2);
  for (let i = 0; i < invFreq.length; i++) invFreq[i] = 1 / f32(base ** f32((2 * i) / headDim));
  if (!scaling) return invFreq;
  const factor = f32(scaling.factor);
  const low = f32(scaling.lowFreqFactor);
  const old = f32(scaling.originalMaxPositionEmbeddings);
  const lowFreqWavelen = f32(scaling.originalMaxPositionEmbeddings / scaling.lowFreqFactor);
  const highFreqWavelen = f32(scaling.originalMaxPositionEmbeddings / scaling.highFreqFactor);
  const band = f32(scaling.highFreqFactor - scaling.lowFreqFactor);
  for (let i = 0; i < invFreq.length; i++) {
    const inv = invFreq[i];
    const wavelen = f32(f32(1 / inv) * f32(2 * Math.PI));
    if (wavelen > lowFreqWavelen) invFreq[i] = f32(inv / factor);
    else if (wavelen >= highFreqWavelen) {
      const smooth = f32(f32(f32(f32(1 / wavelen) * old) - low) / band);
      invFreq[i] = f32(f32(f32(f32(1 - smooth) * inv) / factor) + f32(smooth * inv));
    }
  }
  return invFreq;
}

/** The table of ropeInvFreq on the device: uploaded once per (device, headDim, theta, scaling), never written again. */
function invFreqTable(gpu: Gpu, headDim: number, options: RopeOptions): GPUBuffer {
  let tables = invFreqTables.get(gpu);
  if (!tables) invFreqTables.set(gpu, (tables = new Map()));
  const key = `${headDim}|${options.theta}|${JSON.stringify(options.scaling ?? null)}`;
  let table = tables.get(key);
  if (!table) {
    table = gpu.upload(ropeInvFreq(headDim, options), `rope inv_freq d=${headDim} theta=${options.theta}`);
    tables.set(key, table);
  }
  return table;
}

/** Rows of x [M, nHeads * headDim]; token m sits at position (m % T) + positionOffset (default 0). */
export interface RopeDims {
  M: number;
  T: number;
  nHeads: number;
  headDim: number;
  positionOffset?: number;
}

function rope(gpu: Gpu, entry: string, x: Binding, d: RopeDims, options: RopeOptions): void {
  const { M, T, nHeads, headDim, positionOffset = 0 } = d;
  if (headDim % 2 !== 0) throw new RangeError(`RoPE needs an even head_dim, got ${headDim}`);
  const lastPosition = positionOffset + Math.min(M, T) - 1;
  if (lastPosition >= MAX_POSITION) {
    throw new RangeError(`RoPE position ${lastPosition} is past the ${MAX_POSITION} the shader's sin/cos handle`);
  }
  gpu.dispatch(gpu.kernel(source, entry), {
    params: { M, T, n_heads: nHeads, head_dim: headDim, position_offset: positionOffset },
    bindings: { x, inv_freq: invFreqTable(gpu, headDim, options) },
    workgroups: gpu.grid(Math.ceil((M * nHeads * (headDim / 2)) / WG)),
  });
}

/** Rotates x [M, nHeads * headDim] in place, half-split layout as in HF Llama, with inv_freq from `theta` and `scaling`. */
export function ropeForward(gpu: Gpu, { x }: { x: Binding }, d: RopeDims, options: RopeOptions): void {
  rope(gpu, 'rope_forward', x, d, options);
}

/** The transpose of ropeForward (rotation by -angle), in place on dx [M, nHeads * headDim]. */
export function ropeBackward(gpu: Gpu, { dx }: { dx: Binding }, d: RopeDims, options: RopeOptions): void {
  rope(gpu, 'rope_backward', dx, d, options);
}

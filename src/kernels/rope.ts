import source from '../../shaders/rope.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

const WG = 256;
/** The shader's angle reduction is exact only for angles below 2^16 * pi/2, and angle <= position. */
const MAX_POSITION = 100_000;

const invFreqTables = new WeakMap<Gpu, Map<string, GPUBuffer>>();

/**
 * inv_freq = 1 / theta^(arange(0, d, 2) / d) with every step rounded to f32, as transformers computes
 * it in PyTorch. Done here in float64 and rounded because WGSL's pow is only accurate to a few ulp,
 * and an inv_freq ulp times a position of a few thousand is a visible angle error. Uploaded once per
 * (device, headDim, theta) and never written again.
 */
function invFreqTable(gpu: Gpu, headDim: number, theta: number): GPUBuffer {
  let tables = invFreqTables.get(gpu);
  if (!tables) invFreqTables.set(gpu, (tables = new Map()));
  const key = `${headDim}|${theta}`;
  let table = tables.get(key);
  if (!table) {
    const base = Math.fround(theta);
    const invFreq = new Float32Array(headDim / 2);
    for (let i = 0; i < invFreq.length; i++) {
      invFreq[i] = 1 / Math.fround(base ** Math.fround((2 * i) / headDim));
    }
    table = gpu.upload(invFreq, `rope inv_freq d=${headDim} theta=${theta}`);
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

function rope(gpu: Gpu, entry: string, x: Binding, d: RopeDims, theta: number): void {
  const { M, T, nHeads, headDim, positionOffset = 0 } = d;
  if (headDim % 2 !== 0) throw new RangeError(`RoPE needs an even head_dim, got ${headDim}`);
  const lastPosition = positionOffset + Math.min(M, T) - 1;
  if (lastPosition >= MAX_POSITION) {
    throw new RangeError(`RoPE position ${lastPosition} is past the ${MAX_POSITION} the shader's sin/cos handle`);
  }
  gpu.dispatch(gpu.kernel(source, entry), {
    params: { M, T, n_heads: nHeads, head_dim: headDim, position_offset: positionOffset },
    bindings: { x, inv_freq: invFreqTable(gpu, headDim, theta) },
    workgroups: gpu.grid(Math.ceil((M * nHeads * (headDim / 2)) / WG)),
  });
}

/** Rotates x [M, nHeads * headDim] in place, half-split layout as in HF Llama, with inv_freq from `theta`. */
export function ropeForward(gpu: Gpu, { x }: { x: Binding }, d: RopeDims, { theta }: { theta: number }): void {
  rope(gpu, 'rope_forward', x, d, theta);
}

/** The transpose of ropeForward (rotation by -angle), in place on dx [M, nHeads * headDim]. */
export function ropeBackward(gpu: Gpu, { dx }: { dx: Binding }, d: RopeDims, { theta }: { theta: number }): void {
  rope(gpu, 'rope_backward', dx, d, theta);
}

import source from '../../shaders/lora.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';
import { matmulDyTX, matmulDyW, matmulXWt } from './matmul';

const WG = 256;

export interface LoraDims {
  M: number;
  inFeatures: number;
  outFeatures: number;
  r: number;
}

/** Dropout on the adapter input during training; `seed` must differ per step and per adapted projection. */
export interface LoraDropout {
  p: number;
  seed: number;
}

/**
 * Forward of one adapter in two passes: y += s * u B^T with u = drop(x) A^T (A [r,in], B [out,r]).
 * Saves u [M,r] and, when p > 0, xDrop [M,in] for the backward pass. The engine's projections take
 * the one-pass route instead (`loraDown`, then the base product with matmulXWt's `lora` epilogue,
 * src/model/decoder-layer.ts); this one is for a y whose base product is already stored, where the
 * epilogue cannot apply: the adapter run as an op family of its own (tests/helpers/gpu-ops.ts).
 */
export function loraForward(
  gpu: Gpu,
  t: { x: Binding; xDrop?: Binding; A: Binding; B: Binding; u: Binding; y: Binding },
  d: LoraDims,
  { scaling, dropout }: { scaling: number; dropout?: LoraDropout },
): void {
  loraDown(gpu, t, d, { dropout });
  loraUp(gpu, t, d, { scaling });
}

/**
 * The adapter's down-projection u [M,r] = drop(x) A^T, saved for the backward pass (with xDrop [M,in]
 * when p > 0); the up-projection s * u B^T is then the epilogue of the base product.
 */
export function loraDown(
  gpu: Gpu,
  t: { x: Binding; xDrop?: Binding; A: Binding; u: Binding },
  d: Omit<LoraDims, 'outFeatures'>,
  { dropout }: { dropout?: LoraDropout },
): void {
  const { M, inFeatures, r } = d;
  let input = t.x;
  if (active(dropout)) {
    input = need(t.xDrop, 'xDrop');
    gpu.dispatch(gpu.kernel(source, 'lora_dropout_forward'), {
      params: dropoutParams(M * inFeatures, dropout),
      bindings: { x: t.x, x_drop: input },
      workgroups: gpu.grid(Math.ceil((M * inFeatures) / WG)),
    });
  }
  matmulXWt(gpu, { X: input, W: t.A, Y: t.u }, { M, N: r, K: inFeatures });
}

/**
 * The second half of `loraForward`: y += s * u B^T into a stored y, for a u computed elsewhere (the
 * q/k/v adapters' u = x A^T in one grouped product, src/model/decoder-layer.ts).
 */
export function loraUp(
  gpu: Gpu,
  t: { u: Binding; B: Binding; y: Binding },
  d: Omit<LoraDims, 'inFeatures'>,
  { scaling }: { scaling: number },
): void {
  matmulXWt(gpu, { X: t.u, W: t.B, Y: t.y }, { M: d.M, N: d.outFeatures, K: d.r }, { alpha: scaling, beta: 1 });
}

/**
 * Backward of one adapter: dB (+)= s dY^T u, du = s dY B, dA (+)= du^T drop(x),
 * dx += dropout_backward(du A). `accumulate` adds into dA/dB (micro-batches of one optimizer step);
 * false overwrites them. dx is always added into; without dx (nothing below needs the input
 * gradient) that part is skipped. du [M,r] is scratch; dxScratch [M,in] is needed only when p > 0
 * and dx is given, because the mask must be applied to du A before it joins dx, which already holds dY W.
 */
export function loraBackward(
  gpu: Gpu,
  t: {
    dy: Binding;
    x: Binding;
    xDrop?: Binding;
    u: Binding;
    A: Binding;
    B: Binding;
    dA: Binding;
    dB: Binding;
    du: Binding;
    dx?: Binding;
    dxScratch?: Binding;
  },
  d: LoraDims,
  { scaling, accumulate, dropout }: { scaling: number; accumulate: boolean; dropout?: LoraDropout },
): void {
  const { M, inFeatures, outFeatures, r } = d;
  const beta = accumulate ? 1 : 0;
  matmulDyTX(gpu, { dY: t.dy, X: t.u, dW: t.dB }, { M, N: outFeatures, K: r }, { alpha: scaling, beta });
  matmulDyW(gpu, { dY: t.dy, W: t.B, dX: t.du }, { M, N: outFeatures, K: r }, { alpha: scaling });
  if (!active(dropout)) {
    matmulDyTX(gpu, { dY: t.du, X: t.x, dW: t.dA }, { M, N: r, K: inFeatures }, { beta });
    if (t.dx) matmulDyW(gpu, { dY: t.du, W: t.A, dX: t.dx }, { M, N: r, K: inFeatures }, { beta: 1 });
    return;
  }
  matmulDyTX(gpu, { dY: t.du, X: need(t.xDrop, 'xDrop'), dW: t.dA }, { M, N: r, K: inFeatures }, { beta });
  if (!t.dx) return;
  const scratch = need(t.dxScratch, 'dxScratch');
  matmulDyW(gpu, { dY: t.du, W: t.A, dX: scratch }, { M, N: r, K: inFeatures });
  gpu.dispatch(gpu.kernel(source, 'lora_dropout_backward_accumulate'), {
    params: dropoutParams(M * inFeatures, dropout),
    bindings: { src: scratch, dst: t.dx },
    workgroups: gpu.grid(Math.ceil((M * inFeatures) / WG)),
  });
}

/** CPU mirror of the shader's mask (see shaders/lora.wgsl): is element `index` of x kept? */
export function loraDropoutKept(dropout: LoraDropout, index: number): boolean {
  return pcg((dropout.seed ^ pcg(index >>> 0)) >>> 0) >>> 8 >= dropThreshold(dropout.p);
}

function pcg(v: number): number {
  const state = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

function dropThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new Error(`LoRA dropout p must be in [0, 1), got ${p}`);
  return Math.round(p * 2 ** 24);
}

function active(dropout: LoraDropout | undefined): dropout is LoraDropout {
  return dropout !== undefined && dropThreshold(dropout.p) > 0;
}

function dropoutParams(n: number, dropout: LoraDropout) {
  return { n, seed: dropout.seed >>> 0, threshold: dropThreshold(dropout.p), scale: 1 / (1 - dropout.p) };
}

function need(binding: Binding | undefined, name: string): Binding {
  if (!binding) throw new Error(`LoRA dropout needs the ${name} buffer`);
  return binding;
}

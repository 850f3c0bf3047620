import source from '../../shaders/adamw.wgsl?raw';
import { f32, type Binding, type Gpu } from '../gpu/context';

const WG = 256;

export interface AdamWHyperparams {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count t of this update (the bias corrections use it). */
  step: number;
}

/**
 * One torch.optim.AdamW step over `n` flat elements, in place on `params`, `m` and `v`. The
 * gradient is scaled by `clip[1]`, the coefficient written by `gradNormClipFactor` (called with
 * maxNorm 0 when not clipping), so clipping needs no readback. `clip` must not share a buffer
 * with `params`, `m` or `v`.
 */
export function adamwStep(
  gpu: Gpu,
  params: Binding,
  grads: Binding,
  m: Binding,
  v: Binding,
  clip: Binding,
  n: number,
  h: AdamWHyperparams,
): void {
  const biasCorrection1 = 1 - h.beta1 ** h.step;
  const biasCorrection2 = 1 - h.beta2 ** h.step;
  gpu.dispatch(
    gpu.pipeline(source, 'adamw_step'),
    [
      n,
      f32(1 - h.lr * h.weightDecay),
      f32(1 - h.beta1),
      f32(h.beta2),
      f32(1 - h.beta2),
      f32(h.lr / biasCorrection1),
      f32(Math.sqrt(biasCorrection2)),
      f32(h.eps),
    ],
    [params, grads, m, v, clip],
    gpu.grid(Math.ceil(n / WG)),
  );
}

import source from '../../shaders/adamw.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

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
  t: { params: Binding; grads: Binding; m: Binding; v: Binding; clip: Binding },
  { n }: { n: number },
  h: AdamWHyperparams,
): void {
  const biasCorrection1 = 1 - h.beta1 ** h.step;
  const biasCorrection2 = 1 - h.beta2 ** h.step;
  gpu.dispatch(gpu.kernel(source, 'adamw_step'), {
    params: {
      n,
      decay: 1 - h.lr * h.weightDecay,
      lerp_weight: 1 - h.beta1,
      beta2: h.beta2,
      one_minus_beta2: 1 - h.beta2,
      step_size: h.lr / biasCorrection1,
      bc2_sqrt: Math.sqrt(biasCorrection2),
      eps: h.eps,
    },
    bindings: t,
    workgroups: gpu.grid(Math.ceil(n / WG)),
  });
}

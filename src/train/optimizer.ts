import type { Gpu } from '../gpu/context';
import { adamwStep } from '../kernels/adamw';
import { gradNormClipFactor, gradNormScratchFloats } from '../kernels/grad-norm';
import type { LoraAdapter } from '../lora/adapter';
import type { TrainSettings } from './settings';

export interface AdamWSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; 0 or Infinity disables clipping. */
  maxGradNorm: number;
}

/**
 * The one set of AdamW defaults. Betas and eps are torch.optim.AdamW's and every training run uses
 * them (see adamwSettings); lr, weight decay and clip here serve callers without TrainSettings
 * (the step-time benchmark, which keeps them fixed so that engine versions stay comparable).
 */
export const DEFAULT_ADAMW: AdamWSettings = { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

/** A training run's AdamW: its learning rate, weight decay and clip with DEFAULT_ADAMW's betas and eps. */
export function adamwSettings(s: Pick<TrainSettings, 'lr' | 'weightDecay' | 'maxGradNorm'>): AdamWSettings {
  return { ...DEFAULT_ADAMW, lr: s.lr, weightDecay: s.weightDecay, maxGradNorm: s.maxGradNorm };
}

/**
 * AdamW over the adapter's flat parameter buffer, PyTorch semantics, with global norm clipping
 * computed on the GPU: one step never waits for a readback.
 */
export class AdamW {
  private readonly partials: GPUBuffer;
  /** [global grad norm, clip coefficient] of the latest step. */
  readonly normAndClip: GPUBuffer;
  step = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly adapter: LoraAdapter,
  ) {
    const n = adapter.layout.totalFloats;
    this.partials = gpu.createBuffer(gradNormScratchFloats(n) * 4, 'grad norm partials');
    this.normAndClip = gpu.createBuffer(8, 'grad norm');
  }

  /** Applies the accumulated gradients, then clears them for the next optimizer step. */
  apply(settings: AdamWSettings, lr = settings.lr): void {
    const { gpu, adapter } = this;
    const n = adapter.layout.totalFloats;
    this.step++;
    const clip = { maxNorm: settings.maxGradNorm };
    gradNormClipFactor(gpu, { grads: adapter.grads, partials: this.partials, out: this.normAndClip }, { n }, clip);
    adamwStep(
      gpu,
      { params: adapter.params, grads: adapter.grads, m: adapter.m, v: adapter.v, clip: this.normAndClip },
      { n },
      { lr, beta1: settings.beta1, beta2: settings.beta2, eps: settings.eps, weightDecay: settings.weightDecay, step: this.step },
    );
    adapter.zeroGrads();
  }

  /** Frees its scratch buffers; the adapter's moments belong to the adapter. */
  destroy(): void {
    this.partials.destroy();
    this.normAndClip.destroy();
  }
}

import source from '../../shaders/grad-norm.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

const WG = 256;
/** Elements summed by one workgroup of the first pass (256 invocations x 16 each). */
const CHUNK = WG * 16;

/** Floats of scratch that `gradNormClipFactor` needs for `n` gradient elements. */
export function gradNormScratchFloats(n: number): number {
  return Math.max(1, Math.ceil(n / CHUNK));
}

/**
 * Global L2 norm of `grads[0..n)` into `out[0]` and the clip_grad_norm_ coefficient
 * min(1, maxNorm / (norm + 1e-6)) into `out[1]`, all on the GPU so the optimizer reads the
 * coefficient without a readback. `maxNorm <= 0` or non-finite disables clipping (coefficient 1);
 * the norm is computed either way. `partials` holds `gradNormScratchFloats(n)` floats and, like
 * `out`, must not share a buffer with `grads`.
 */
export function gradNormClipFactor(
  gpu: Gpu,
  { grads, partials, out }: { grads: Binding; partials: Binding; out: Binding },
  { n }: { n: number },
  { maxNorm }: { maxNorm: number },
): void {
  const count = Math.ceil(n / CHUNK);
  gpu.dispatch(gpu.kernel(source, 'grad_norm_partials'), {
    params: { n, count },
    bindings: { grads, partials },
    workgroups: gpu.grid(count),
  });
  gpu.dispatch(gpu.kernel(source, 'grad_norm_finalize'), {
    params: { count, max_norm: maxNorm > 0 && Number.isFinite(maxNorm) ? maxNorm : 0 },
    bindings: { partials, out },
    workgroups: [1],
  });
}

import source from '../../shaders/rmsnorm.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

/** Widest row handled by one invocation; wider rows get a workgroup each. */
export const ROW_MAX_C = 1024;

export interface RmsnormDims {
  M: number;
  C: number;
}

function schedule(gpu: Gpu, { M, C }: RmsnormDims): { suffix: string; workgroups: [number, number] } {
  return C <= ROW_MAX_C ? { suffix: '_rows', workgroups: gpu.grid(Math.ceil(M / 64)) } : { suffix: '', workgroups: gpu.grid(M) };
}

/** y = x * rsqrt(mean(x^2) + eps) * weight over rows of `x` [M, C]; rstd [M] is kept for the backward. */
export function rmsnormForward(
  gpu: Gpu,
  t: { x: Binding; weight: Binding; y: Binding; rstd: Binding },
  d: RmsnormDims,
  { eps }: { eps: number },
): void {
  const { suffix, workgroups } = schedule(gpu, d);
  gpu.dispatch(gpu.kernel(source, `rmsnorm_forward${suffix}`), {
    params: { M: d.M, C: d.C, eps },
    bindings: { x: t.x, w: t.weight, y: t.y, rstd: t.rstd },
    workgroups,
  });
}

/**
 * dx += d loss / d x for y = rmsnorm(x): adds, because dx is the residual stream gradient. The weight
 * is frozen, so no weight gradient. `rstd` is the forward's.
 */
export function rmsnormBackwardAccumulate(
  gpu: Gpu,
  t: { dy: Binding; x: Binding; weight: Binding; rstd: Binding; dx: Binding },
  d: RmsnormDims,
): void {
  const { suffix, workgroups } = schedule(gpu, d);
  gpu.dispatch(gpu.kernel(source, `rmsnorm_backward_accumulate${suffix}`), {
    params: { M: d.M, C: d.C },
    bindings: { x: t.x, w: t.weight, dy: t.dy, rstd_saved: t.rstd, dx: t.dx },
    workgroups,
  });
}

import source from '../../shaders/rmsnorm.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

/** Widest row handled by one invocation; wider rows get a workgroup each. */
export const ROW_MAX_C = 1024;

function schedule(gpu: Gpu, M: number, C: number): { suffix: string; workgroups: [number, number] } {
  return C <= ROW_MAX_C ? { suffix: '_rows', workgroups: gpu.grid(Math.ceil(M / 64)) } : { suffix: '', workgroups: gpu.grid(M) };
}

/** y = x * rsqrt(mean(x^2) + eps) * weight over rows of `x` [M, C]; rstd [M] is kept for the backward. */
export function rmsnormForward(
  gpu: Gpu,
  x: Binding,
  weight: Binding,
  y: Binding,
  rstd: Binding,
  M: number,
  C: number,
  eps: number,
): void {
  const { suffix, workgroups } = schedule(gpu, M, C);
  gpu.dispatch(gpu.kernel(source, `rmsnorm_forward${suffix}`), { params: { M, C, eps }, bindings: { x, w: weight, y, rstd }, workgroups });
}

/**
 * dx += d loss / d x for y = rmsnorm(x): adds, because dx is the residual stream gradient. The weight
 * is frozen, so no weight gradient.
 */
export function rmsnormBackwardAccumulate(
  gpu: Gpu,
  dy: Binding,
  x: Binding,
  weight: Binding,
  rstd: Binding,
  dx: Binding,
  M: number,
  C: number,
): void {
  const { suffix, workgroups } = schedule(gpu, M, C);
  gpu.dispatch(gpu.kernel(source, `rmsnorm_backward_accumulate${suffix}`), {
    params: { M, C },
    bindings: { x, w: weight, dy, rstd_saved: rstd, dx },
    workgroups,
  });
}

import source from '../../shaders/rmsnorm.wgsl?raw';
import { f32, type Binding, type Gpu } from '../gpu/context';

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
  gpu.dispatch(gpu.pipeline(source, 'rmsnorm_forward'), [M, C, f32(eps)], [x, weight, y, rstd], gpu.grid(M));
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
  gpu.dispatch(
    gpu.pipeline(source, 'rmsnorm_backward_accumulate'),
    [M, C],
    [x, weight, undefined, undefined, dy, rstd, dx],
    gpu.grid(M),
  );
}

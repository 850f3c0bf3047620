import source from '../../shaders/swiglu.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

const WG = 256;

/** out = silu(gate) * up over `n` elements. */
export function swigluForward(gpu: Gpu, t: { gate: Binding; up: Binding; out: Binding }, { n }: { n: number }): void {
  gpu.dispatch(gpu.kernel(source, 'swiglu_forward'), { params: { n }, bindings: t, workgroups: gpu.grid(Math.ceil(n / WG)) });
}

/** Gradients of out = silu(gate) * up; overwrites dgate and dup. */
export function swigluBackward(
  gpu: Gpu,
  t: { dout: Binding; gate: Binding; up: Binding; dgate: Binding; dup: Binding },
  { n }: { n: number },
): void {
  gpu.dispatch(gpu.kernel(source, 'swiglu_backward'), { params: { n }, bindings: t, workgroups: gpu.grid(Math.ceil(n / WG)) });
}

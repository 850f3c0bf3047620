import source from '../../shaders/swiglu.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

const WG = 256;

/** out = silu(gate) * up over `n` elements. */
export function swigluForward(gpu: Gpu, gate: Binding, up: Binding, out: Binding, n: number): void {
  gpu.dispatch(gpu.pipeline(source, 'swiglu_forward'), [n], [gate, up, out], gpu.grid(Math.ceil(n / WG)));
}

/** Gradients of out = silu(gate) * up; overwrites dgate and dup. */
export function swigluBackward(
  gpu: Gpu,
  dout: Binding,
  gate: Binding,
  up: Binding,
  dgate: Binding,
  dup: Binding,
  n: number,
): void {
  gpu.dispatch(
    gpu.pipeline(source, 'swiglu_backward'),
    [n],
    [gate, up, undefined, dout, dgate, dup],
    gpu.grid(Math.ceil(n / WG)),
  );
}

import source from '../../shaders/swiglu.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';
import { dispatchElementwise, type ElementwiseOptions } from './elementwise';

/** out = silu(gate) * up over `n` elements. */
export function swigluForward(
  gpu: Gpu,
  t: { gate: Binding; up: Binding; out: Binding },
  { n }: { n: number },
  options: ElementwiseOptions = {},
): void {
  dispatchElementwise(gpu, source, 'swiglu_forward', t, n, options);
}

/** Gradients of out = silu(gate) * up; overwrites dgate and dup. */
export function swigluBackward(
  gpu: Gpu,
  t: { dout: Binding; gate: Binding; up: Binding; dgate: Binding; dup: Binding },
  { n }: { n: number },
  options: ElementwiseOptions = {},
): void {
  dispatchElementwise(gpu, source, 'swiglu_backward', t, n, options);
}

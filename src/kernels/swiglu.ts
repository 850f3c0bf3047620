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

/**
 * Gradients of out = silu(gate) * up, in place: gate is overwritten with d gate and up with d up
 * (the caller's gate and up are gone afterwards).
 */
export function swigluBackwardInplace(
  gpu: Gpu,
  t: { dout: Binding; gate: Binding; up: Binding },
  { n }: { n: number },
  options: ElementwiseOptions = {},
): void {
  dispatchElementwise(gpu, source, 'swiglu_backward_inplace', { dout: t.dout, gate_dgate: t.gate, up_dup: t.up }, n, options);
}

import source from '../../shaders/residual.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';
import { dispatchElementwise, type ElementwiseOptions } from './elementwise';

/** y = a + b over `n` elements. */
export function residualForward(
  gpu: Gpu,
  t: { a: Binding; b: Binding; y: Binding },
  { n }: { n: number },
  options: ElementwiseOptions = {},
): void {
  dispatchElementwise(gpu, source, 'residual_forward', t, n, options);
}

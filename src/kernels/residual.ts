import source from '../../shaders/residual.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

const WG = 256;

/** y = a + b over `n` elements. */
export function residualForward(gpu: Gpu, t: { a: Binding; b: Binding; y: Binding }, { n }: { n: number }): void {
  gpu.dispatch(gpu.kernel(source, 'residual_forward'), { params: { n }, bindings: t, workgroups: gpu.grid(Math.ceil(n / WG)) });
}

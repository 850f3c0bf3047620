import source from '../../shaders/residual.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

const WG = 256;

/** y = a + b over `n` elements. */
export function residualForward(gpu: Gpu, a: Binding, b: Binding, y: Binding, n: number): void {
  gpu.dispatch(gpu.pipeline(source, 'residual_forward'), [n], [a, b, y], gpu.grid(Math.ceil(n / WG)));
}

/** dst += src over `n` elements: how a residual branch's gradient joins the main stream. */
export function residualBackwardAccumulate(gpu: Gpu, src: Binding, dst: Binding, n: number): void {
  gpu.dispatch(
    gpu.pipeline(source, 'residual_backward_accumulate'),
    [n],
    [undefined, undefined, undefined, src, dst],
    gpu.grid(Math.ceil(n / WG)),
  );
}

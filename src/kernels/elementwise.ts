import type { Binding, Gpu } from '../gpu/context';

const WG = 256;

export interface ElementwiseOptions {
  /**
   * 'vec4' (default): four elements per invocation, 16-byte loads and stores, the last n % 4 by the
   * scalar entry point; 'scalar': one invocation per element.
   */
  schedule?: 'vec4' | 'scalar';
}

/**
 * Records an elementwise kernel over `n` elements: `<entry>_vec4` over the first 4 * floor(n / 4),
 * its bindings named with a `4` suffix (`a4` for `a`: the same buffer as vec4 elements), then
 * `entry` from `start` over the rest. Binding offsets are 256-byte aligned, so vec4 views line up.
 */
export function dispatchElementwise(
  gpu: Gpu,
  source: string,
  entry: string,
  bindings: Record<string, Binding>,
  n: number,
  { schedule = 'vec4' }: ElementwiseOptions,
): void {
  const vectors = schedule === 'vec4' ? Math.floor(n / 4) : 0;
  if (vectors > 0) {
    const wide: Record<string, Binding> = {};
    for (const name in bindings) wide[`${name}4`] = bindings[name];
    gpu.dispatch(gpu.kernel(source, `${entry}_vec4`), { params: { n }, bindings: wide, workgroups: gpu.grid(Math.ceil(vectors / WG)) });
  }
  const start = 4 * vectors;
  if (start < n) {
    gpu.dispatch(gpu.kernel(source, entry), { params: { n, start }, bindings, workgroups: gpu.grid(Math.ceil((n - start) / WG)) });
  }
}

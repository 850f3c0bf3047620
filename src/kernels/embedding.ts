import source from '../../shaders/embedding.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';
import type { WeightFormat } from '../model/weight-format';
import { weightShader } from './weight-shader';

const WG = 256;

/**
 * out[m, :] = table[ids[m] - rowStart, :] (with `alpha`: out[m, :] += alpha * that row) for the tokens
 * whose id is in [rowStart, rowStart + rowCount).
 * `table` holds rows rowStart.. of the full vocabulary table, so a table too large for one binding is
 * looked up piece by piece; rows of `out` for ids outside this piece are left as they are.
 * No backward: embeddings are frozen in LoRA training. `format` says how the table is stored
 * (src/model/weight-format.ts, default 'f32'); `out` is f32 either way.
 */
export function embeddingForward(
  gpu: Gpu,
  t: { ids: Binding; table: Binding; out: Binding },
  d: { M: number; C: number; rowStart: number; rowCount: number },
  { format = 'f32', alpha }: { format?: WeightFormat; alpha?: number } = {},
): void {
  const entry = alpha === undefined ? 'embedding_forward' : 'embedding_accumulate';
  gpu.dispatch(gpu.kernel(weightShader(source, format), entry), {
    params: { M: d.M, C: d.C, row_start: d.rowStart, row_count: d.rowCount, ...(alpha !== undefined && { alpha }) },
    bindings: t,
    workgroups: gpu.grid(Math.ceil((d.M * d.C) / WG)),
  });
}

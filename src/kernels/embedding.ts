import source from '../../shaders/embedding.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

const WG = 256;

/**
 * out[m, :] = table[ids[m] - rowStart, :] for the tokens whose id is in [rowStart, rowStart + rowCount).
 * `table` holds rows rowStart.. of the full vocabulary table, so a table too large for one binding is
 * looked up piece by piece; rows of `out` for ids outside this piece are left as they are.
 * No backward: embeddings are frozen in LoRA training.
 */
export function embeddingForward(
  gpu: Gpu,
  ids: Binding,
  table: Binding,
  out: Binding,
  M: number,
  C: number,
  rowStart: number,
  rowCount: number,
): void {
  gpu.dispatch(gpu.kernel(source, 'embedding_forward'), {
    params: { M, C, row_start: rowStart, row_count: rowCount },
    bindings: { ids, table, out },
    workgroups: gpu.grid(Math.ceil((M * C) / WG)),
  });
}

import source from '../../shaders/matmul-subgroup.wgsl?raw';
import type { Gpu } from '../gpu/context';
import type { WeightFormat } from '../model/weight-format';
import { quadRange, splitCount, type Vec4Product, vec4Reads } from './matmul-vec4';
import { weightShader } from './weight-shader';

const TILE = 64;
/** Column groups of 4 in a subgroup tile unless a call asks otherwise: as wide as the 64-column workgroup tile. */
const LANE_COLUMNS = 16;

/**
 * A product as matmul-vec4.ts takes it, ungrouped (matmul.ts gives grouped products to vec4), with the
 * subgroup tile's column groups (a power of two, 1 to 16).
 */
export type SubgroupProduct = Omit<Vec4Product, 'groups'> & { laneColumns?: number };

/**
 * Whether this device can run shaders/matmul-subgroup.wgsl: the `subgroups` feature, with the
 * subgroup sizes the shader's layout covers (powers of two from 4 to 128, which WebGPU promises;
 * checked where the adapter reports them).
 */
export function subgroupMatmulSupported(gpu: Gpu): boolean {
  if (!gpu.hasSubgroups) return false;
  const info = gpu.device.adapterInfo;
  const sizes = [info?.subgroupMinSize, info?.subgroupMaxSize].filter((s): s is number => s !== undefined);
  return sizes.every((s) => s >= 4 && s <= 128 && (s & (s - 1)) === 0);
}

/** The weight formats this schedule reads (the 16-bit ones through widen_weight); block formats keep matmul.wgsl's. */
export function subgroupReads(format: WeightFormat): boolean {
  return vec4Reads(format);
}

/**
 * Records one product of shaders/matmul-subgroup.wgsl (`entry` is matmul.wgsl's name of it), or
 * returns false so the caller can take another schedule: no `subgroups` (or subgroup sizes outside
 * 4..128), a block weight format, an f32 B that cannot be bound as whole vec4s inside its buffer,
 * or a dW product the vec4 schedule would split over K (this schedule has no split-K, and a few
 * output tiles over a long reduction would leave most of a GPU idle).
 */
export function recordSubgroupProduct(gpu: Gpu, entry: string, d: SubgroupProduct): boolean {
  const laneColumns = d.laneColumns ?? LANE_COLUMNS;
  if (!(Number.isInteger(laneColumns) && laneColumns >= 1 && laneColumns <= 16 && (laneColumns & (laneColumns - 1)) === 0)) {
    throw new Error(`matmul: laneColumns must be a power of two from 1 to 16, got ${laneColumns}`);
  }
  if (!subgroupMatmulSupported(gpu) || !subgroupReads(d.format)) return false;
  const tilesX = Math.ceil(d.cols / TILE);
  const tilesY = Math.ceil(d.rows / TILE);
  if (entry === 'matmul_backward_weight' && (d.splitK ?? splitCount(tilesX * tilesY, d.rows * d.cols, d.depth)) > 1) return false;
  const b = d.format === 'f32' ? quadRange(d.b.binding) : d.b.binding;
  if (!b) return false;
  const params = {
    rows: d.rows,
    cols: d.cols,
    depth: d.depth,
    tiles_x: tilesX,
    tiles_y: tilesY,
    lda: d.lda,
    ldb: d.ldb,
    ldc: d.ldc,
    off_a: d.a.offset,
    off_b: d.b.offset,
    off_c: d.c.offset,
    alpha: d.alpha,
    beta: d.beta,
    lane_cols: laneColumns,
  };
  gpu.dispatch(gpu.kernel(weightShader(source, d.format), entry.replace(/^matmul_/, 'matmul_subgroup_')), {
    params: d.bias ? { ...params, off_bias: d.bias.offset } : params,
    bindings: { a: d.a.binding, b, c: d.c.binding, bias: d.bias?.binding },
    workgroups: gpu.grid(tilesX * tilesY),
  });
  return true;
}

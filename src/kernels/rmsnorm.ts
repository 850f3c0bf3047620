import source from '../../shaders/rmsnorm.wgsl?raw';
import rowSumSubgroup from '../../shaders/row-sum-subgroup.wgsl?raw';
import rowSumWorkgroup from '../../shaders/row-sum-workgroup.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';

/** Widest row the one-invocation-per-row schedule takes by default; wider rows get a workgroup each. */
export const ROW_MAX_C = 1024;

/** rmsnorm.wgsl with its row_sum: subgroup sums, or a tree in workgroup memory. */
const WORKGROUP_SOURCE = `${source}\n${rowSumWorkgroup}`;
const SUBGROUP_SOURCE = `enable subgroups;\n${source}\n${rowSumSubgroup}`;

export interface RmsnormDims {
  M: number;
  C: number;
}

export interface RmsnormOptions {
  /**
   * 'rows': one invocation per row, no barriers (CPU adapters, rows up to ROW_MAX_C);
   * 'workgroup': one workgroup per row, coalesced, a reduction across it (GPUs, and wider rows).
   * Default: 'workgroup' where `gpu.gpuSchedules` or C > ROW_MAX_C, else 'rows'.
   */
  schedule?: 'rows' | 'workgroup';
  /** The workgroup schedule's reduction: subgroup sums (default where the device has `subgroups`) or a workgroup-memory tree. */
  subgroups?: boolean;
}

interface Schedule {
  /** The WGSL source and entry point suffix. */
  source: string;
  suffix: string;
  constants?: { WG: number };
  workgroups: [number, number];
}

function schedule(gpu: Gpu, { M, C }: RmsnormDims, options: RmsnormOptions): Schedule {
  const kind = options.schedule ?? (gpu.gpuSchedules || C > ROW_MAX_C ? 'workgroup' : 'rows');
  if (kind === 'rows') return { source: WORKGROUP_SOURCE, suffix: '_rows', workgroups: gpu.grid(Math.ceil(M / 64)) };
  const subgroups = options.subgroups ?? gpu.hasSubgroups;
  if (subgroups && !gpu.hasSubgroups) throw new Error('rmsnorm: subgroups requested, but the device lacks the subgroups feature');
  // 64 invocations keep several rows in flight per GPU core at the usual widths; wide rows take more.
  return {
    source: subgroups ? SUBGROUP_SOURCE : WORKGROUP_SOURCE,
    suffix: '',
    constants: { WG: C <= ROW_MAX_C ? 64 : 256 },
    workgroups: gpu.grid(M),
  };
}

/** y = x * rsqrt(mean(x^2) + eps) * weight over rows of `x` [M, C]; rstd [M] is kept for the backward. */
export function rmsnormForward(
  gpu: Gpu,
  t: { x: Binding; weight: Binding; y: Binding; rstd: Binding },
  d: RmsnormDims,
  options: RmsnormOptions & { eps: number },
): void {
  const s = schedule(gpu, d, options);
  gpu.dispatch(gpu.kernel(s.source, `rmsnorm_forward${s.suffix}`, s.constants), {
    params: { M: d.M, C: d.C, eps: options.eps },
    bindings: { x: t.x, w: t.weight, y: t.y, rstd: t.rstd },
    workgroups: s.workgroups,
  });
}

/**
 * The residual add and the norm after it in one pass: h = x + branch (written: the residual stream),
 * y = rmsnorm(h) * weight and rstd [M] as rmsnormForward gives for h. x, branch, h, y [M, C].
 */
export function residualRmsnormForward(
  gpu: Gpu,
  t: { x: Binding; branch: Binding; h: Binding; weight: Binding; y: Binding; rstd: Binding },
  d: RmsnormDims,
  options: RmsnormOptions & { eps: number },
): void {
  const s = schedule(gpu, d, options);
  gpu.dispatch(gpu.kernel(s.source, `residual_rmsnorm_forward${s.suffix}`, s.constants), {
    params: { M: d.M, C: d.C, eps: options.eps },
    bindings: { x: t.x, branch: t.branch, h: t.h, w: t.weight, y: t.y, rstd: t.rstd },
    workgroups: s.workgroups,
  });
}

/**
 * dx += d loss / d x for y = rmsnorm(x): adds, because dx is the residual stream gradient. The weight
 * is frozen, so no weight gradient. `rstd` is the forward's.
 */
export function rmsnormBackwardAccumulate(
  gpu: Gpu,
  t: { dy: Binding; x: Binding; weight: Binding; rstd: Binding; dx: Binding },
  d: RmsnormDims,
  options: RmsnormOptions = {},
): void {
  const s = schedule(gpu, d, options);
  gpu.dispatch(gpu.kernel(s.source, `rmsnorm_backward_accumulate${s.suffix}`, s.constants), {
    params: { M: d.M, C: d.C },
    bindings: { x: t.x, w: t.weight, dy: t.dy, rstd_saved: t.rstd, dx: t.dx },
    workgroups: s.workgroups,
  });
}

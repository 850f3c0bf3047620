import groups from '../../shaders/matmul-groups.wgsl?raw';
import tiles from '../../shaders/matmul.wgsl?raw';
import type { Binding, Gpu } from '../gpu/context';
import type { WeightFormat } from '../model/weight-format';
import { type Operand, operand, sharedOperand, wholeBlocks } from './matmul-operands';
import { recordSubgroupProduct } from './matmul-subgroup';
import { type LoraOperands, loraArguments, recordVec4Product, vec4Reads } from './matmul-vec4';
import { weightShader } from './weight-shader';

/** shaders/matmul.wgsl with the grouped forward's column map (shaders/matmul-groups.wgsl), which matmul-vec4.wgsl shares. */
export const MATMUL_SHADER = `${tiles}\n${groups}`;

const TILE = 64;

export interface MatmulOptions {
  /** Scales the product (default 1). */
  alpha?: number;
  /** 0 (default) overwrites the output without reading it; 1 accumulates into it. */
  beta?: number;
  /**
   * 'vec4': vector loads, 8x4 register blocks, double-buffered slices, split-K for dW
   * (shaders/matmul-vec4.wgsl; GPUs); 'tiled': workgroup-memory tiles; 'direct': barrier-free register
   * blocks (CPU adapters). Default: 'vec4' where `gpu.gpuSchedules`, else 'direct'. 'vec4' falls back
   * to 'tiled' for the quantized weight formats and for an operand whose range cannot be widened to
   * whole 16-byte vectors inside its buffer. 'subgroup': the same tiles with operand A shared between
   * lanes by subgroupShuffle, no staged tiles and no barrier in the reduction
   * (shaders/matmul-subgroup.wgsl); only when asked, until a GPU measurement says it is faster. It
   * falls back to 'vec4' (and so possibly 'tiled') on a device without the `subgroups` feature, for
   * the quantized weight formats, for an f32 B whose range cannot be widened to whole vectors, and for
   * a dY^T X product that 'vec4' would split over K.
   */
  schedule?: 'vec4' | 'tiled' | 'direct' | 'subgroup';
  /**
   * dY^T X on 'vec4' (and 'subgroup', which leaves a split product to 'vec4'): reduction slices summed
   * in a second pass (1: none). Default: from the shape.
   */
  splitK?: number;
  /**
   * How W is stored (src/model/weight-format.ts); default 'f32'. With 'bf16' or 'f16', W's binding
   * offset may be any multiple of 2 bytes; with a block format, any whole number of blocks (K must be
   * a multiple of the block size). Only for the products with a frozen weight (X W^T, dY W).
   */
  format?: WeightFormat;
}

/**
 * The LoRA epilogue of X W^T: s * u B^T added to every output before it is stored, so a projection
 * with an adapter writes y once (shaders/matmul.wgsl). u [M, r] = drop(x) A^T (src/kernels/lora.ts
 * `loraDown`) and B [N, r] are f32 whatever W's format; their bindings may start at any 4-byte offset.
 */
export interface LoraEpilogue {
  u: Binding;
  B: Binding;
  r: number;
  scaling: number;
}

/** Sizes as the wrappers name them: the layer y [M, N] = x [M, K] W^T with W [N, K]. */
export interface MatmulDims {
  M: number;
  N: number;
  K: number;
}

/**
 * Y [M,N] = alpha * X [M,K] W^T (W [N,K]) + beta * Y (+ bias [N], added after scaling, not multiplied
 * by alpha) (+ s * u B^T with `lora`, added last, not multiplied by alpha).
 */
export function matmulXWt(
  gpu: Gpu,
  t: { X: Binding; W: Binding; Y: Binding; bias?: Binding },
  d: MatmulDims & {
    /** Elements between output rows (default N): writes a column block of a wider matrix. */
    outStride?: number;
  },
  opts: MatmulOptions & { lora?: LoraEpilogue } = {},
): void {
  const { M, N, K } = d;
  wholeBlocks(K, opts.format);
  const ldc = d.outStride ?? N;
  if (ldc < N) throw new Error(`matmulXWt: outStride ${ldc} < N ${N}`);
  const { lora } = opts;
  if (lora && !(Number.isInteger(lora.r) && lora.r >= 1))
    throw new Error(`matmulXWt: LoRA rank must be a whole number >= 1, got ${lora.r}`);
  const entry = t.bias ? 'matmul_forward_bias' : 'matmul_forward';
  product(gpu, lora ? `${entry}_lora` : entry, {
    a: operand(gpu, t.X, M * K, 'X'),
    b: operand(gpu, t.W, N * K, 'W', opts.format),
    c: operand(gpu, t.Y, M === 0 || N === 0 ? 0 : (M - 1) * ldc + N, 'Y'),
    bias: t.bias ? operand(gpu, t.bias, N, 'bias') : undefined,
    lora: lora && {
      u: operand(gpu, lora.u, M * lora.r, 'lora.u'),
      b: operand(gpu, lora.B, N * lora.r, 'lora.B'),
      r: lora.r,
      scaling: lora.scaling,
    },
    rows: M,
    cols: N,
    depth: K,
    lda: K,
    ldb: K,
    ldc,
    opts,
  });
}

/** One product of a grouped X W^T: its weight rows [N, K], output [M, N] and bias [N], each a range of the groups' one buffer. */
export interface MatmulGroup {
  W: Binding;
  Y: Binding;
  bias?: Binding;
  N: number;
}

/**
 * Y_g [M, N_g] = X [M, K] W_g^T (+ bias_g) for one to three groups in one dispatch over all their
 * columns (q/k/v from one input: the narrow k/v products alone would leave most of a GPU idle). The
 * groups' W must be ranges of one buffer in `opts.format`, their Y ranges of one buffer, their biases
 * (all or none) ranges of one buffer; each Y is dense ([M, N_g], stride N_g) and overwritten. Every
 * schedule takes groups (shaders/matmul.wgsl's header says how).
 */
export function matmulXWtGroups(
  gpu: Gpu,
  t: { X: Binding; groups: readonly MatmulGroup[] },
  { M, K }: { M: number; K: number },
  opts: Pick<MatmulOptions, 'schedule' | 'format'> = {},
): void {
  const { groups } = t;
  const format = opts.format ?? 'f32';
  if (groups.length < 1 || groups.length > 3) throw new Error(`matmulXWtGroups: 1 to 3 groups, got ${groups.length}`);
  if (groups.some((g) => !(Number.isInteger(g.N) && g.N > 0))) throw new Error('matmulXWtGroups: every group needs N >= 1');
  const withBias = groups.filter((g) => g.bias).length;
  if (withBias !== 0 && withBias !== groups.length) throw new Error('matmulXWtGroups: give every group a bias or none');
  wholeBlocks(K, format);
  for (const g of groups) {
    operand(gpu, g.W, g.N * K, 'W', format);
    operand(gpu, g.Y, M * g.N, 'Y');
    if (g.bias) operand(gpu, g.bias, g.N, 'bias');
  }
  const w = sharedOperand(
    gpu,
    groups.map((g) => g.W),
    'W',
    format,
  );
  const y = sharedOperand(
    gpu,
    groups.map((g) => g.Y),
    'Y',
  );
  const bias = withBias
    ? sharedOperand(
        gpu,
        groups.map((g) => g.bias!),
        'bias',
      )
    : undefined;
  const starts = groups.map((_, i) => groups.slice(0, i).reduce((sum, g) => sum + g.N, 0));
  const at = (values: readonly number[], i: number) => (i < groups.length ? values[i] : 0);
  product(gpu, bias ? 'matmul_forward_bias' : 'matmul_forward', {
    a: operand(gpu, t.X, M * K, 'X'),
    b: { binding: w.binding, offset: w.offsets[0] },
    c: { binding: y.binding, offset: y.offsets[0] },
    bias: bias ? { binding: bias.binding, offset: bias.offsets[0] } : undefined,
    rows: M,
    cols: starts[groups.length - 1] + groups[groups.length - 1].N,
    depth: K,
    lda: K,
    ldb: K,
    ldc: groups[0].N,
    opts,
    groups: {
      col1: at(starts, 1),
      col2: at(starts, 2),
      off_b1: at(w.offsets, 1),
      off_b2: at(w.offsets, 2),
      off_c1: at(y.offsets, 1),
      off_c2: at(y.offsets, 2),
      ldc1: at(
        groups.map((g) => g.N),
        1,
      ),
      ldc2: at(
        groups.map((g) => g.N),
        2,
      ),
      off_bias1: bias ? at(bias.offsets, 1) : 0,
      off_bias2: bias ? at(bias.offsets, 2) : 0,
    },
  });
}

/** The uniform fields of a grouped forward (see shaders/matmul.wgsl); all 0 for one product. */
export interface GroupFields {
  col1: number;
  col2: number;
  off_b1: number;
  off_b2: number;
  off_c1: number;
  off_c2: number;
  ldc1: number;
  ldc2: number;
  off_bias1: number;
  off_bias2: number;
}

export const UNGROUPED: GroupFields = {
  col1: 0,
  col2: 0,
  off_b1: 0,
  off_b2: 0,
  off_c1: 0,
  off_c2: 0,
  ldc1: 0,
  ldc2: 0,
  off_bias1: 0,
  off_bias2: 0,
};

/** dX [M,K] = alpha * dY [M,N] W [N,K] + beta * dX. */
export function matmulDyW(gpu: Gpu, t: { dY: Binding; W: Binding; dX: Binding }, { M, N, K }: MatmulDims, opts: MatmulOptions = {}): void {
  wholeBlocks(K, opts.format);
  product(gpu, 'matmul_backward_input', {
    a: operand(gpu, t.dY, M * N, 'dY'),
    b: operand(gpu, t.W, N * K, 'W', opts.format),
    c: operand(gpu, t.dX, M * K, 'dX'),
    rows: M,
    cols: K,
    depth: N,
    lda: N,
    ldb: K,
    ldc: K,
    opts,
  });
}

/** dW [N,K] = alpha * dY [M,N]^T X [M,K] + beta * dW; every operand f32 (no frozen weight is involved). */
export function matmulDyTX(gpu: Gpu, t: { dY: Binding; X: Binding; dW: Binding }, { M, N, K }: MatmulDims, opts: MatmulOptions = {}): void {
  if ((opts.format ?? 'f32') !== 'f32') throw new Error(`matmulDyTX: operands are f32, not ${opts.format}`);
  product(gpu, 'matmul_backward_weight', {
    a: operand(gpu, t.dY, M * N, 'dY'),
    b: operand(gpu, t.X, M * K, 'X'),
    c: operand(gpu, t.dW, N * K, 'dW'),
    rows: N,
    cols: K,
    depth: M,
    lda: N,
    ldb: K,
    ldc: K,
    opts,
  });
}

function product(
  gpu: Gpu,
  entry: string,
  d: {
    a: Operand;
    b: Operand;
    c: Operand;
    bias?: Operand;
    lora?: LoraOperands;
    rows: number;
    cols: number;
    depth: number;
    lda: number;
    ldb: number;
    ldc: number;
    opts: MatmulOptions;
    groups?: GroupFields;
  },
): void {
  const schedule = d.opts.schedule ?? gpu.matmulSchedule ?? (gpu.gpuSchedules ? 'vec4' : 'direct');
  const format = d.opts.format ?? 'f32';
  if (schedule === 'vec4' || schedule === 'subgroup') {
    const vec4 = { ...d, alpha: d.opts.alpha ?? 1, beta: d.opts.beta ?? 0, format, splitK: d.opts.splitK, groups: d.groups ?? UNGROUPED };
    // The subgroup schedule has no groups and no LoRA epilogue: such a product takes vec4.
    if (schedule === 'subgroup' && !d.groups && !d.lora && recordSubgroupProduct(gpu, entry, vec4)) return;
    if (vec4Reads(format) && recordVec4Product(gpu, entry, vec4)) return;
  }
  const direct = schedule === 'direct';
  const side = direct ? 4 : TILE;
  const tilesX = Math.ceil(d.cols / side);
  const tilesY = Math.ceil(d.rows / side);
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
    off_bias: d.bias?.offset ?? 0,
    alpha: d.opts.alpha ?? 1,
    beta: d.opts.beta ?? 0,
    ...(d.groups ?? UNGROUPED),
  };
  const lora = loraArguments(d.lora);
  gpu.dispatch(gpu.kernel(weightShader(MATMUL_SHADER, d.opts.format ?? 'f32'), direct ? `${entry}_direct` : entry), {
    params: { ...params, ...lora.params },
    bindings: { a: d.a.binding, b: d.b.binding, c: d.c.binding, bias: d.bias?.binding, ...lora.bindings },
    workgroups: gpu.grid(direct ? Math.ceil((tilesX * tilesY) / 64) : tilesX * tilesY),
  });
}

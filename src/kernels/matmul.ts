import source from '../../shaders/matmul.wgsl?raw';
import { asRange, type Binding, type Gpu } from '../gpu/context';
import { BLOCK_LAYOUTS, bytesPerWeight, isBlockFormat, storedBytes, type WeightFormat } from '../model/weight-format';
import { type LoraOperands, loraArguments, recordVec4Product, vec4Reads } from './matmul-vec4';
import { weightShader } from './weight-shader';

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
   * whole 16-byte vectors inside its buffer.
   */
  schedule?: 'vec4' | 'tiled' | 'direct';
  /** dY^T X on 'vec4' only: reduction slices summed in a second pass (1: none). Default: from the shape. */
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

/** A block-format W's rows (K values) must be whole blocks: a block never spans two rows. */
function wholeBlocks(K: number, format: WeightFormat = 'f32'): void {
  if (isBlockFormat(format) && K % BLOCK_LAYOUTS[format].blockSize !== 0) {
    throw new Error(`matmul: rows of ${K} values are not whole ${format} blocks of ${BLOCK_LAYOUTS[format].blockSize}`);
  }
}

interface Operand {
  binding: Binding;
  /** Elements between the aligned binding start and the tensor. */
  offset: number;
}

/**
 * Rounds a binding's offset down to the device's storage offset alignment and returns the rest in
 * elements, so callers may address any row of a matrix (a vocabulary chunk, one token's hidden
 * state). Out-of-range reads in WGSL are silently clamped, so a too-small binding fails here instead.
 * A 16-bit weight may start and end in the middle of a word: the bound range is widened to whole
 * words, which stay inside the buffer since buffers are whole words. A block-format weight starts at
 * a block: the bound range starts a whole number of blocks before it, at an aligned offset, so the
 * shader counts the rest in elements (blocks times block size).
 */
function operand(gpu: Gpu, binding: Binding, elements: number, name: string, format: WeightFormat = 'f32'): Operand {
  const { buffer, offset, size } = asRange(binding);
  const needed = storedBytes(format, elements);
  if (size < needed) throw new Error(`matmul: ${name} needs ${needed} bytes, binding has ${size}`);
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  let base = offset - (offset % align);
  let rest = 0;
  if (isBlockFormat(format)) {
    const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
    const blocks = blockStart(offset, blockBytes, align);
    if (blocks === null) throw new Error(`matmul: ${name} offset ${offset} is no whole number of ${format} blocks after an aligned offset`);
    base = offset - blocks * blockBytes;
    rest = blocks * blockSize;
  } else {
    const bytes = bytesPerWeight(format);
    if (offset % bytes !== 0) throw new Error(`matmul: ${name} offset ${offset} is not a multiple of ${bytes}`);
    rest = (offset - base) / bytes;
  }
  const boundSize = Math.ceil((size + offset - base) / 4) * 4;
  if (base === offset && boundSize === size) return { binding, offset: 0 };
  return { binding: { buffer, offset: base, size: boundSize }, offset: rest };
}

/**
 * The fewest whole blocks k such that offset - k * blockBytes is a multiple of `align` and not
 * negative, or null: if one exists it is below `align`, since k and k + align give the same residue.
 */
function blockStart(offset: number, blockBytes: number, align: number): number | null {
  for (let k = 0; k < align && k * blockBytes <= offset; k++) if ((offset - k * blockBytes) % align === 0) return k;
  return null;
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
  },
): void {
  const schedule = d.opts.schedule ?? (gpu.gpuSchedules ? 'vec4' : 'direct');
  const format = d.opts.format ?? 'f32';
  if (schedule === 'vec4' && vec4Reads(format)) {
    const vec4 = { ...d, alpha: d.opts.alpha ?? 1, beta: d.opts.beta ?? 0, format, splitK: d.opts.splitK };
    if (recordVec4Product(gpu, entry, vec4)) return;
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
    alpha: d.opts.alpha ?? 1,
    beta: d.opts.beta ?? 0,
  };
  const lora = loraArguments(d.lora);
  gpu.dispatch(gpu.kernel(weightShader(source, d.opts.format ?? 'f32'), direct ? `${entry}_direct` : entry), {
    params: { ...(d.bias ? { ...params, off_bias: d.bias.offset } : params), ...lora.params },
    bindings: { a: d.a.binding, b: d.b.binding, c: d.c.binding, bias: d.bias?.binding, ...lora.bindings },
    workgroups: gpu.grid(direct ? Math.ceil((tilesX * tilesY) / 64) : tilesX * tilesY),
  });
}

import groups from '../../shaders/matmul-groups.wgsl?raw';
import vec4 from '../../shaders/matmul-vec4.wgsl?raw';
import { asRange, type Binding, type Gpu } from '../gpu/context';
import type { WeightFormat } from '../model/weight-format';
import type { GroupFields } from './matmul';
import { weightShader } from './weight-shader';

/** With the grouped forward's column map it shares with matmul.wgsl (shaders/matmul-groups.wgsl). */
const source = `${vec4}\n${groups}`;

const TILE = 64;
const SLICE = 16;
const SUM_WG = 256;

/**
 * Split-K targets about this many workgroups: twice the SM count of a large GPU (132 on an H100), so
 * every SM has work and a second wave hides the tail; smaller GPUs only get more, equally cheap, waves.
 */
const SPLIT_TARGET_WORKGROUPS = 256;
/** Each split reduces at least this many values, so the partial sums' traffic stays small beside the product. */
const SPLIT_MIN_DEPTH = 256;
/**
 * Floats of the split-K scratch, allocated once per Gpu on first use and kept for its lifetime
 * (recorded commands may still use it, so it is never swapped for a larger one): 4 MiB. The split
 * count is capped so splits x rows x cols fits; an output too large for two splits is not split.
 */
export const SPLIT_SCRATCH_FLOATS = 1 << 20;

/**
 * Bytes of the split-K scratch a training step allocates: the LoRA dA/dB products reduce over the
 * step's `tokens` and split once that is two slices deep, on the GPU schedules only. For the memory
 * estimate (src/app/memory.ts).
 */
export function splitScratchBytes(tokens: number, gpuSchedules: boolean): number {
  return gpuSchedules && tokens >= 2 * SPLIT_MIN_DEPTH ? SPLIT_SCRATCH_FLOATS * 4 : 0;
}

/** The weight formats this schedule reads; the others keep matmul.wgsl's schedules. */
export function vec4Reads(format: WeightFormat): boolean {
  return format === 'f32' || format === 'bf16' || format === 'f16';
}

/** An operand as src/kernels/matmul.ts binds it: a range and the tensor's offset in elements inside it. */
export interface Vec4Operand {
  binding: Binding;
  offset: number;
}

/** The epilogue's operands as src/kernels/matmul.ts binds them. */
export interface LoraOperands {
  u: Vec4Operand;
  b: Vec4Operand;
  r: number;
  scaling: number;
}

/** The epilogue's params and bindings of a *_lora entry point (both shaders name them alike), or none. */
export function loraArguments(lora: LoraOperands | undefined): {
  params: { lora_r?: number; lora_scale?: number; off_u?: number; off_lb?: number };
  bindings: { lora_u?: Binding; lora_b?: Binding };
} {
  if (!lora) return { params: {}, bindings: {} };
  return {
    params: { lora_r: lora.r, lora_scale: lora.scaling, off_u: lora.u.offset, off_lb: lora.b.offset },
    bindings: { lora_u: lora.u.binding, lora_b: lora.b.binding },
  };
}

export interface Vec4Product {
  a: Vec4Operand;
  b: Vec4Operand;
  c: Vec4Operand;
  bias?: Vec4Operand;
  /** The LoRA epilogue of a *_lora forward entry (shaders/matmul-vec4.wgsl). */
  lora?: LoraOperands;
  rows: number;
  cols: number;
  depth: number;
  lda: number;
  ldb: number;
  ldc: number;
  alpha: number;
  beta: number;
  format: WeightFormat;
  /** Reduction slices for dW (1: none); undefined: chosen from the shape. */
  splitK?: number;
  /** A grouped forward's fields (src/kernels/matmul.ts `matmulXWtGroups`), all 0 otherwise. */
  groups: GroupFields;
}

/**
 * Records one product of shaders/matmul-vec4.wgsl (`entry` is matmul.wgsl's name of it), or returns
 * false when a vector-read operand cannot be bound as whole vec4s (its range would end past its
 * buffer), so the caller can take another schedule.
 */
export function recordVec4Product(gpu: Gpu, entry: string, d: Vec4Product): boolean {
  if (d.splitK !== undefined && !(Number.isInteger(d.splitK) && d.splitK >= 1)) {
    throw new Error(`matmul: splitK must be a whole number >= 1, got ${d.splitK}`);
  }
  const a = quadRange(d.a.binding);
  const b = d.format === 'f32' ? quadRange(d.b.binding) : d.b.binding;
  if (!a || !b) return false;
  const tilesX = Math.ceil(d.cols / TILE);
  const tilesY = Math.ceil(d.rows / TILE);
  const shader = weightShader(source, d.format);
  const vecEntry = entry.replace(/^matmul_/, 'matmul_vec4_');
  const sizes = { rows: d.rows, cols: d.cols, depth: d.depth, tiles_x: tilesX, tiles_y: tilesY, lda: d.lda, ldb: d.ldb };
  // fetch and store read the group fields (group_of), so every entry that calls them gets them.
  const operands = { off_a: d.a.offset, off_b: d.b.offset, off_bias: d.bias?.offset ?? 0, ...d.groups };
  const output = { ldc: d.ldc, off_c: d.c.offset, alpha: d.alpha, beta: d.beta };
  const splits = entry === 'matmul_backward_weight' ? (d.splitK ?? splitCount(tilesX * tilesY, d.rows * d.cols, d.depth)) : 1;
  if (splits > 1) {
    const chunk = Math.ceil(Math.ceil(d.depth / splits) / SLICE) * SLICE;
    const used = Math.ceil(d.depth / chunk);
    if (used * d.rows * d.cols > SPLIT_SCRATCH_FLOATS) {
      throw new Error(`matmul: ${used} split-K slices of ${d.rows}x${d.cols} exceed the ${SPLIT_SCRATCH_FLOATS}-float scratch`);
    }
    const partial = splitScratch(gpu);
    gpu.dispatch(gpu.kernel(shader, 'matmul_vec4_backward_weight_split'), {
      params: { ...sizes, ...operands, ldc: d.ldc, off_c: d.c.offset, chunk, splits: used },
      bindings: { a, b, partial },
      workgroups: gpu.grid(tilesX * tilesY * used),
    });
    gpu.dispatch(gpu.kernel(shader, 'matmul_vec4_split_sum'), {
      params: { rows: d.rows, cols: d.cols, splits: used, ...output },
      bindings: { c: d.c.binding, partial },
      workgroups: gpu.grid(Math.ceil((d.rows * d.cols) / SUM_WG)),
    });
    return true;
  }
  const lora = loraArguments(d.lora);
  gpu.dispatch(gpu.kernel(shader, vecEntry), {
    params: { ...sizes, ...operands, ...output, ...lora.params },
    bindings: { a, b, c: d.c.binding, bias: d.bias?.binding, ...lora.bindings },
    workgroups: gpu.grid(tilesX * tilesY),
  });
  return true;
}

/**
 * How many reduction slices a dW product of `tiles` output tiles gets: enough for about
 * SPLIT_TARGET_WORKGROUPS workgroups, each slice at least SPLIT_MIN_DEPTH deep, within the scratch;
 * 1 (no split) when that is fewer than 2.
 */
export function splitCount(tiles: number, outputs: number, depth: number): number {
  const n = Math.min(
    Math.floor(depth / SPLIT_MIN_DEPTH),
    Math.ceil(SPLIT_TARGET_WORKGROUPS / tiles),
    Math.floor(SPLIT_SCRATCH_FLOATS / outputs),
  );
  return n >= 2 ? n : 1;
}

/** The binding widened to whole 16-byte vectors (array<vec4f> reads only whole ones), or null past the buffer's end. */
export function quadRange(binding: Binding): Binding | null {
  const { buffer, offset, size } = asRange(binding);
  const quads = Math.ceil(size / 16) * 16;
  if (quads === size) return binding;
  if (offset + quads > buffer.size) return null;
  return { buffer, offset, size: quads };
}

const scratch = new WeakMap<Gpu, GPUBuffer>();

function splitScratch(gpu: Gpu): GPUBuffer {
  let buffer = scratch.get(gpu);
  if (!buffer) {
    buffer = gpu.createBuffer(SPLIT_SCRATCH_FLOATS * 4, 'matmul split-K partial sums');
    scratch.set(gpu, buffer);
  }
  return buffer;
}

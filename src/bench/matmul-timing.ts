import { asRange, type Gpu, type RecordedDispatch } from '../gpu/context';
import { matmulDyTX, matmulDyW, matmulXWt } from '../kernels/matmul';
import type { GpuWeights } from '../model/gpu-weights';
import { blockGgmlType } from '../gguf/block-formats';
import { quantize } from '../gguf/quants';
import { asWords, encodeWeights, isBlockFormat, type WeightFormat } from '../model/weight-format';
import { seededUniform } from '../util/random';

/** One distinct matmul of a training step, timed alone. M, N, K as the wrapper names them. */
export interface MatmulTiming {
  kernel: string;
  wrapper: 'matmulXWt' | 'matmulDyW' | 'matmulDyTX';
  M: number;
  N: number;
  K: number;
  /** beta = 1: adds into its output (reads it too). */
  accumulate: boolean;
  /** How W is stored (X W^T, dY W); f32 for dY^T X and for products with LoRA weights. */
  weight_format: WeightFormat;
  /** The rank r of a fused LoRA epilogue (s * u B^T added before the store, 2 M N r more flops); absent without one. */
  lora_r?: number;
  calls_per_step: number;
  ms_per_call: number | null;
  gflops: number | null;
  /** With `--matmul-schedules`: the time alone of each named schedule forced on this shape (ms per call). */
  ms_per_call_by_schedule?: Partial<Record<MatmulSchedule, number>>;
}

/** The schedules a benchmark can force on each matmul shape (MatmulOptions.schedule). */
export const MATMUL_SCHEDULES = ['vec4', 'subgroup', 'tiled', 'direct'] as const;
export type MatmulSchedule = (typeof MATMUL_SCHEDULES)[number];

const WRAPPERS: Record<string, MatmulTiming['wrapper']> = {
  matmul_forward: 'matmulXWt',
  matmul_forward_bias: 'matmulXWt',
  matmul_backward_input: 'matmulDyW',
  matmul_backward_weight: 'matmulDyTX',
};

/** Each frozen weight matrix's buffer and format, to tell which matmul dispatches read 16-bit weights. */
export function matrixFormats(weights: GpuWeights): Map<GPUBuffer, WeightFormat> {
  const formats = new Map<GPUBuffer, WeightFormat>();
  for (const vocab of [weights.embedding, weights.lmHead]) {
    for (const piece of vocab.pieces) formats.set(asRange(piece.weight).buffer, vocab.format);
  }
  for (const layer of weights.layers) {
    for (const m of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) formats.set(asRange(m.buffer).buffer, m.format);
  }
  return formats;
}

/** The wrapper-level shape of a matmul dispatch: rows x cols is the output, depth the sum (see matmul.ts). */
export function matmulShape(d: RecordedDispatch, weightFormats: Map<GPUBuffer, WeightFormat>): MatmulTiming | null {
  const kernel = d.kernel.name;
  const split = kernel === 'matmul_vec4_backward_weight_split';
  const lora = /_lora(_direct)?$/.test(kernel);
  const entry = kernel.replace(/_(direct|split)$/, '').replace(/_lora$/, '');
  const wrapper = WRAPPERS[entry.replace(/^matmul_(vec4|subgroup)_/, 'matmul_')];
  if (!wrapper) return null;
  const { rows, cols, depth } = d.params;
  // A split-K product's first pass stands for the call; it never reads dW (the second pass applies beta), so it counts as overwriting.
  const beta = split ? 0 : d.params.beta;
  const dims =
    wrapper === 'matmulXWt'
      ? { M: rows, N: cols, K: depth }
      : wrapper === 'matmulDyW'
        ? { M: rows, N: depth, K: cols }
        : { M: depth, N: rows, K: cols };
  const b = d.bindings.b;
  const weight_format = wrapper === 'matmulDyTX' || !b ? 'f32' : (weightFormats.get(asRange(b).buffer) ?? 'f32');
  const shape = { kernel, wrapper, ...dims, accumulate: beta !== 0, weight_format };
  return { ...shape, ...(lora && { lora_r: d.params.lora_r }), calls_per_step: 1, ms_per_call: null, gflops: null };
}

/** Floating-point operations of one call: 2 M N K, and 2 M N r for a LoRA epilogue. */
export function matmulFlops(s: MatmulTiming): number {
  return 2 * s.M * s.N * (s.K + (s.lora_r ?? 0));
}

/**
 * Milliseconds per call of one matmul shape alone: one untimed call, then enough calls to fill
 * `minMs`. On the schedule the wrappers choose, or on `schedule` (where it applies: a schedule falls
 * back as MatmulOptions says).
 */
export async function timeMatmul(gpu: Gpu, s: MatmulTiming, minMs: number, schedule?: MatmulSchedule): Promise<number> {
  const sizes = {
    matmulXWt: [s.M * s.K, s.N * s.K, s.M * s.N],
    matmulDyW: [s.M * s.N, s.N * s.K, s.M * s.K],
    matmulDyTX: [s.M * s.N, s.M * s.K, s.N * s.K],
  }[s.wrapper];
  // Random operands: zeros can run faster than real data on some GPUs.
  const uniform = seededUniform(s.M * 31 + s.N * 7 + s.K);
  const values = (floats: number) => Float32Array.from({ length: floats }, () => uniform() - 0.5);
  const random = (floats: number, label: string) => gpu.upload(values(floats), label);
  const a = random(sizes[0], 'bench matmul 0');
  const w = values(sizes[1]);
  // A block-format W is the random values quantized (rows of K); a float format packs them.
  const f = s.weight_format;
  const words = isBlockFormat(f)
    ? asWords(quantize(blockGgmlType(f), w, s.K))
    : encodeWeights({ dtype: 'F32', bytes: new Uint8Array(w.buffer) }, f, 'bench', 'W');
  const b = gpu.upload(words, 'bench matmul 1');
  const c = gpu.createBuffer(sizes[2] * 4, 'bench matmul out');
  const bias = /^matmul_(vec4_|subgroup_)?forward_bias/.test(s.kernel) ? random(s.N, 'bench bias') : undefined;
  const r = s.lora_r;
  const u = r ? random(s.M * r, 'bench lora u') : undefined;
  const loraB = r ? random(s.N * r, 'bench lora B') : undefined;
  const dims = { M: s.M, N: s.N, K: s.K };
  const lora = r && u && loraB ? { u, B: loraB, r, scaling: 1 } : undefined;
  const opts = { beta: s.accumulate ? 1 : 0, format: s.weight_format, schedule, lora };
  const call = () => {
    if (s.wrapper === 'matmulXWt') matmulXWt(gpu, { X: a, W: b, Y: c, bias }, dims, opts);
    else if (s.wrapper === 'matmulDyW') matmulDyW(gpu, { dY: a, W: b, dX: c }, dims, opts);
    else matmulDyTX(gpu, { dY: a, X: b, dW: c }, dims, opts);
  };
  const timed = async (calls: number) => {
    const start = performance.now();
    for (let i = 0; i < calls; i++) call();
    await gpu.sync();
    return performance.now() - start;
  };
  try {
    await timed(1);
    const one = await timed(1);
    const calls = Math.min(1000, Math.max(3, Math.ceil(minMs / Math.max(one, 1e-3))));
    return (await timed(calls)) / calls;
  } finally {
    for (const buffer of [a, b, c, bias, u, loraB]) buffer?.destroy();
  }
}

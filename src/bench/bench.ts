import type { Example } from '../data/prepare';
import { asRange, type Gpu, type RecordedDispatch } from '../gpu/context';
import { matmulDyTX, matmulDyW, matmulXWt } from '../kernels/matmul';
import { LoraAdapter } from '../lora/adapter';
import type { LoraConfig } from '../lora/config';
import type { ModelConfig } from '../model/config';
import type { GpuWeights } from '../model/gpu-weights';
import { LlamaModel } from '../model/llama';
import { encodeWeights, type WeightFormat, type WeightPrecision } from '../model/weight-format';
import { expectedTensorShapes } from '../model/weights';
import { LoraTrainer } from '../train/trainer';
import { validateTrainSettings } from '../train/settings';
import { seededUniform } from '../util/random';
import { estimateTrainingMemory } from '../app/memory';
import { randomWeightsSource } from './random-weights';

export interface BenchOptions {
  /** The name the results are filed under (a built-in config or a file name). */
  configName: string;
  config: ModelConfig;
  seq: number;
  batch: number;
  lora: LoraConfig;
  /** Steps run before timing starts (pipeline compilation, first allocations). */
  warmup: number;
  steps: number;
  /** Build everything and record steps without executing them; report memory only. */
  memoryOnly: boolean;
  seed: number;
  /** Least time spent timing each matmul shape (more repetitions for small shapes). */
  matmulMinMs: number;
  /** How the (F32 random) weight matrices are stored on the GPU; default 'auto', i.e. f32. */
  weights?: WeightPrecision;
}

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
  calls_per_step: number;
  ms_per_call: number | null;
  gflops: number | null;
}

export interface BenchResult {
  benchmark: 'webtune-lora-train-step';
  mode: 'steps' | 'memory-only';
  /** What the mode measured, in words. */
  mode_note: string;
  config: string;
  model: {
    architecture: string;
    hidden_size: number;
    intermediate_size: number;
    num_layers: number;
    num_heads: number;
    num_kv_heads: number;
    head_dim: number;
    vocab_size: number;
    tie_word_embeddings: boolean;
    parameters: number;
  };
  seq: number;
  batch: number;
  tokens_per_step: number;
  lora: { r: number; alpha: number; dropout: number; targets: string[]; trainable_parameters: number };
  optimizer: string;
  /** In words: the weight matrices' format and the f32 of everything else. */
  precision: string;
  /** The format of the frozen weight matrices on the GPU. */
  weights: WeightFormat | 'mixed';
  warmup: number;
  steps: number;
  tokens_per_s: number | null;
  ms_per_step: { median: number; mean: number; min: number; max: number } | null;
  step_ms: number[];
  dispatches_per_step: number;
  /** CPU time to record one step (encoding, bind groups, uniforms, validation), timed in dry-run steps: no kernel runs. */
  record_ms_per_step: number;
  matmul_flops_per_step: number;
  /** Sum over shapes of calls x time per call: the share of a step the matmuls would take alone. */
  matmul_ms_per_step: number | null;
  matmul: MatmulTiming[];
  peak_memory_bytes: number;
  peak_memory_gib: number;
  peak_memory_source: string;
  memory: {
    weights_bytes: number;
    adapter_and_optimizer_bytes: number;
    workspace_bytes: number;
    /** Optimizer scratch, uniform blocks, readback buffers. */
    other_bytes: number;
    /** What the page's memory check (src/worker/memory.ts) predicts before allocating. */
    estimate_bytes: number;
  };
  /** Over all steps, warm-up included: created once, then reused by every later step. */
  bind_groups: { created: number; reused: number };
  device: { name: string; vendor: string; architecture: string; description: string; cpu_adapter: boolean };
  date: string;
}

/**
 * Steps recorded without being executed (Gpu.dryRun). In memory-only mode the second step is the
 * first with the steady-state allocations (the trainer keeps one step's loss readback in flight
 * while recording the next); the steps after the first time the CPU cost of recording a step.
 */
const DRY_RUN_STEPS = 3;

const WRAPPERS: Record<string, MatmulTiming['wrapper']> = {
  matmul_forward: 'matmulXWt',
  matmul_forward_bias: 'matmulXWt',
  matmul_backward_input: 'matmulDyW',
  matmul_backward_weight: 'matmulDyTX',
};

/**
 * Trains a LoRA adapter on a random-init model with random tokens through the real trainer and
 * reports throughput, per-step times, each matmul shape's speed alone, and the peak bytes of GPU
 * buffers. The model, adapter, optimizer and workspace are the ones training uses, so the
 * memory figure is what a real run at these settings needs.
 */
export async function runBenchmark(gpu: Gpu, o: BenchOptions): Promise<BenchResult> {
  const { config } = o;
  if (o.seq < 2) throw new Error(`--seq must be at least 2 (one token predicts the next), got ${o.seq}`);
  if (o.seq > config.maxPositionEmbeddings) {
    throw new Error(`--seq ${o.seq} is longer than the model's ${config.maxPositionEmbeddings} positions`);
  }
  const baseline = gpu.bufferAccounting.liveBytes;
  gpu.resetPeak();
  const bindGroupsBefore = gpu.bindGroupStats;

  const model = await LlamaModel.load(gpu, randomWeightsSource(config, o.seed), { precision: o.weights ?? 'auto' });
  const weightFormats = matrixFormats(model.weights);
  const afterWeights = gpu.bufferAccounting.liveBytes;
  const adapter = new LoraAdapter(gpu, config, o.lora);
  adapter.initPeft(o.seed);
  const afterAdapter = gpu.bufferAccounting.liveBytes;

  const totalSteps = o.memoryOnly ? DRY_RUN_STEPS : o.warmup + o.steps;
  const shapes = new Map<string, MatmulTiming>();
  let dispatches = 0;
  const stopObserving = gpu.observeDispatches((d) => {
    dispatches++;
    const shape = matmulShape(d, weightFormats);
    if (!shape) return;
    const key = `${shape.kernel} ${shape.M} ${shape.N} ${shape.K} ${shape.accumulate} ${shape.weight_format}`;
    const known = shapes.get(key);
    if (known) known.calls_per_step++;
    else shapes.set(key, shape);
  });
  let durations: number[];
  try {
    durations = await trainSteps(gpu, model, adapter, o, totalSteps, o.memoryOnly);
  } finally {
    stopObserving();
  }
  const peak = gpu.bufferAccounting.peakBytes - baseline;
  const bindGroupsAfter = gpu.bindGroupStats;
  const recordMs = o.memoryOnly ? durations.slice(1) : (await trainSteps(gpu, model, adapter, o, DRY_RUN_STEPS, true)).slice(1);

  const matmul = [...shapes.values()].map((s) => ({ ...s, calls_per_step: s.calls_per_step / totalSteps }));
  const stepMs = o.memoryOnly ? [] : durations.slice(o.warmup);
  if (!o.memoryOnly) {
    for (const shape of matmul) {
      shape.ms_per_call = await timeMatmul(gpu, shape, o.matmulMinMs);
      shape.gflops = (2 * shape.M * shape.N * shape.K) / (shape.ms_per_call * 1e6);
    }
  }

  const tokensPerStep = o.batch * o.seq;
  const workspaceBytes = model.workspaceBytes;
  const weightsBytes = afterWeights - baseline;
  const adapterBytes = afterAdapter - afterWeights;
  const held = model.precision === 'mixed' ? 'f32' : model.precision;
  const estimate = estimateTrainingMemory(config, { lora: o.lora, batchSize: o.batch, maxLength: o.seq }, gpu.limits, held);
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const info = gpu.device.adapterInfo;
  return {
    benchmark: 'webtune-lora-train-step',
    mode: o.memoryOnly ? 'memory-only' : 'steps',
    mode_note: o.memoryOnly
      ? `model, adapter, optimizer and workspace built; ${DRY_RUN_STEPS} training steps recorded and validated but not executed, so every buffer a step allocates was allocated`
      : `${o.warmup} warm-up and ${o.steps} timed training steps through the trainer; a step's time is the gap between consecutive loss deliveries`,
    config: o.configName,
    model: {
      architecture: config.architecture,
      hidden_size: config.hiddenSize,
      intermediate_size: config.intermediateSize,
      num_layers: config.numLayers,
      num_heads: config.numHeads,
      num_kv_heads: config.numKvHeads,
      head_dim: config.headDim,
      vocab_size: config.vocabSize,
      tie_word_embeddings: config.tieWordEmbeddings,
      parameters: [...expectedTensorShapes(config).values()].reduce((n, shape) => n + shape.reduce((a, b) => a * b, 1), 0),
    },
    seq: o.seq,
    batch: o.batch,
    tokens_per_step: tokensPerStep,
    lora: {
      r: o.lora.r,
      alpha: o.lora.alpha,
      dropout: o.lora.dropout,
      targets: o.lora.targets,
      trainable_parameters: adapter.parameterCount,
    },
    optimizer: 'AdamW (clip 1.0)',
    precision:
      model.precision === 'f32' ? 'f32' : `${model.precision} weight matrices; norms, biases, LoRA, gradients, AdamW and activations f32`,
    weights: model.precision,
    warmup: o.memoryOnly ? 0 : o.warmup,
    steps: o.memoryOnly ? 0 : o.steps,
    tokens_per_s: stepMs.length ? (tokensPerStep * stepMs.length) / (sum(stepMs) / 1000) : null,
    ms_per_step: stepMs.length
      ? { median: median(stepMs), mean: sum(stepMs) / stepMs.length, min: Math.min(...stepMs), max: Math.max(...stepMs) }
      : null,
    step_ms: stepMs,
    dispatches_per_step: dispatches / totalSteps,
    record_ms_per_step: median(recordMs),
    matmul_flops_per_step: sum(matmul.map((s) => 2 * s.M * s.N * s.K * s.calls_per_step)),
    matmul_ms_per_step: o.memoryOnly ? null : sum(matmul.map((s) => (s.ms_per_call ?? 0) * s.calls_per_step)),
    matmul,
    peak_memory_bytes: peak,
    peak_memory_gib: peak / 2 ** 30,
    peak_memory_source: 'peak of the summed sizes of all live GPU buffers the engine created (Gpu buffer accounting)',
    memory: {
      weights_bytes: weightsBytes,
      adapter_and_optimizer_bytes: adapterBytes,
      workspace_bytes: workspaceBytes,
      other_bytes: peak - weightsBytes - adapterBytes - workspaceBytes,
      estimate_bytes: estimate.totalBytes,
    },
    bind_groups: {
      created: bindGroupsAfter.created - bindGroupsBefore.created,
      reused: bindGroupsAfter.reused - bindGroupsBefore.reused,
    },
    device: {
      name: [info.vendor, info.architecture].filter(Boolean).join(' ') + (info.description ? ` (${info.description})` : ''),
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description,
      cpu_adapter: gpu.isCpuAdapter,
    },
    date: new Date().toISOString().slice(0, 10),
  };
}

/**
 * Runs `steps` optimizer steps through a new trainer (its own AdamW state) and returns each step's
 * time: the gap between consecutive loss deliveries, the first measured from the start.
 */
async function trainSteps(
  gpu: Gpu,
  model: LlamaModel,
  adapter: LoraAdapter,
  o: BenchOptions,
  steps: number,
  dryRun: boolean,
): Promise<number[]> {
  const settings = validateTrainSettings({
    lora: o.lora,
    lr: 1e-4,
    epochs: 1,
    batchSize: o.batch,
    maxLength: o.seq,
    evalEvery: 0,
    checkpointEvery: 0,
    seed: o.seed,
  });
  const trainer = new LoraTrainer(gpu, model, adapter, settings, { train: randomExamples(model.config, o, steps), eval: [] }, 0);
  const times = [performance.now()];
  gpu.dryRun = dryRun;
  try {
    await trainer.run({ onProgress: () => times.push(performance.now()) });
    await gpu.sync();
  } finally {
    gpu.dryRun = false;
  }
  if (times.length !== steps + 1) throw new Error(`the trainer ran ${times.length - 1} steps, expected ${steps}`);
  return times.slice(1).map((t, i) => t - times[i]);
}

/** `vendor-architecture` in lower case, for result file names (`google-swiftshader`, `nvidia-hopper`). */
export function deviceSlug(device: BenchResult['device']): string {
  const text = [device.vendor, device.architecture].filter(Boolean).join('-') || device.description || 'unknown-device';
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 48);
}

/** Rows of `seq` random token ids, every position trained: one optimizer step per `batch` rows. */
function randomExamples(config: ModelConfig, o: BenchOptions, steps: number): Example[] {
  const uniform = seededUniform(o.seed + 1);
  return Array.from({ length: steps * o.batch }, () => {
    const inputIds = Array.from({ length: o.seq }, () => Math.floor(uniform() * config.vocabSize));
    return { inputIds, labels: [...inputIds], truncated: false };
  });
}

/** Each frozen weight matrix's buffer and format, to tell which matmul dispatches read 16-bit weights. */
function matrixFormats(weights: GpuWeights): Map<GPUBuffer, WeightFormat> {
  const formats = new Map<GPUBuffer, WeightFormat>();
  for (const vocab of [weights.embedding, weights.lmHead]) {
    for (const piece of vocab.pieces) formats.set(asRange(piece.weight).buffer, vocab.format);
  }
  for (const layer of weights.layers) {
    for (const m of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) formats.set(m.buffer, m.format);
  }
  return formats;
}

/** The wrapper-level shape of a matmul dispatch: rows x cols is the output, depth the sum (see matmul.ts). */
function matmulShape(d: RecordedDispatch, weightFormats: Map<GPUBuffer, WeightFormat>): MatmulTiming | null {
  const kernel = d.kernel.name;
  const wrapper = WRAPPERS[kernel.replace(/_direct$/, '')];
  if (!wrapper) return null;
  const { rows, cols, depth, beta } = d.params;
  const dims =
    wrapper === 'matmulXWt'
      ? { M: rows, N: cols, K: depth }
      : wrapper === 'matmulDyW'
        ? { M: rows, N: depth, K: cols }
        : { M: depth, N: rows, K: cols };
  const b = d.bindings.b;
  const weight_format = wrapper === 'matmulDyTX' || !b ? 'f32' : (weightFormats.get(asRange(b).buffer) ?? 'f32');
  return { kernel, wrapper, ...dims, accumulate: beta !== 0, weight_format, calls_per_step: 1, ms_per_call: null, gflops: null };
}

/** Milliseconds per call of one matmul shape alone: one untimed call, then enough calls to fill `minMs`. */
async function timeMatmul(gpu: Gpu, s: MatmulTiming, minMs: number): Promise<number> {
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
  const b = gpu.upload(encodeWeights({ dtype: 'F32', bytes: new Uint8Array(w.buffer) }, s.weight_format, 'bench', 'W'), 'bench matmul 1');
  const c = gpu.createBuffer(sizes[2] * 4, 'bench matmul out');
  const bias = s.kernel.startsWith('matmul_forward_bias') ? random(s.N, 'bench bias') : undefined;
  const dims = { M: s.M, N: s.N, K: s.K };
  const opts = { beta: s.accumulate ? 1 : 0, format: s.weight_format };
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
    for (const buffer of [a, b, c, bias]) buffer?.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

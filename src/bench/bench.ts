import type { Example } from '../data/prepare';
import type { Gpu } from '../gpu/context';
import { LoraAdapter } from '../lora/adapter';
import type { LoraConfig } from '../lora/config';
import type { ModelConfig } from '../model/config';
import { LlamaModel } from '../model/llama';
import type { WeightFormat, WeightPrecision } from '../model/weight-format';
import { matrixFormatsOf } from '../model/gpu-weights';
import { expectedTensorShapes } from '../model/weights';
import { LoraTrainer } from '../train/trainer';
import { type RecomputeMode, validateTrainSettings } from '../train/settings';
import { seededUniform } from '../util/random';
import { deviceMemory, estimateTrainingMemory } from '../app/memory';
import { type FamilyTimingMethod, familyTable, type KernelFamilyTiming, type KernelTiming, profileStep } from './families';
import { type MatmulSchedule, type MatmulTiming, matmulFlops, matmulShape, matrixFormats, timeMatmul } from './matmul-timing';
import { randomQuantizedSource, randomWeightsSource } from './random-weights';

export type { MatmulTiming } from './matmul-timing';

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
  /** Least time spent timing each matmul shape (more repetitions for small shapes), and each family alone. */
  matmulMinMs: number;
  /** Schedules each matmul shape is also timed on, forced (`ms_per_call_by_schedule`); default none. */
  matmulSchedules?: readonly MatmulSchedule[];
  /** Activation recomputation, as the train setting (default off). */
  recompute?: RecomputeMode;
  /** Budget in bytes for recompute 'auto' (default: the device's, src/app/memory.ts). */
  memoryBudget?: number | null;
  /** How kernel families are timed: default 'timestamp-query' where the device has it, else 'alone'. */
  familyTiming?: FamilyTimingMethod;
  /** How the (F32 random) weight matrices are stored on the GPU; default 'auto', i.e. f32. */
  weights?: WeightPrecision;
  /** Random weights in llama-quantize's Q4_K_M or Q5_K_M types (block formats on the GPU under weights 'auto'); default F32. */
  ggufMix?: 'Q4_K_M' | 'Q5_K_M' | null;
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
  /** The llama-quantize mix of the random weights (--gguf-mix), or null for F32 random weights. */
  gguf_mix: 'Q4_K_M' | 'Q5_K_M' | null;
  warmup: number;
  steps: number;
  tokens_per_s: number | null;
  ms_per_step: { median: number; mean: number; min: number; max: number } | null;
  step_ms: number[];
  dispatches_per_step: number;
  /** Command buffers finished per step (the Gpu submits one every few hundred dispatches and at each readback). */
  command_buffers_per_step: number;
  /** Which schedules the kernel wrappers took: Gpu.schedules, and whether that meant the GPU ones here. */
  schedules: { preference: Gpu['schedules']; gpu_schedules: boolean };
  /** How kernel_families and kernels were timed: one extra step after the timed ones. */
  kernel_timing: { method: FamilyTimingMethod | null; note: string; profiled_ms_per_step: number | null };
  /** Per shader file: dispatches and GPU time per step, most time first. */
  kernel_families: KernelFamilyTiming[];
  /** Per entry point: dispatches per step and, with timestamp queries, GPU time per step. */
  kernels: KernelTiming[];
  /** CPU time to record one step (encoding, bind groups, uniforms, validation), timed in dry-run steps: no kernel runs. */
  record_ms_per_step: number;
  matmul_flops_per_step: number;
  /** Sum over shapes of calls x time per call: the share of a step the matmuls would take alone. */
  matmul_ms_per_step: number | null;
  matmul: MatmulTiming[];
  peak_memory_bytes: number;
  peak_memory_gib: number;
  peak_memory_source: string;
  /** Whether the steps recomputed activations in backward, and the setting that decided it. */
  recompute: { mode: RecomputeMode; on: boolean };
  memory: {
    /** Measured: live bytes after each part was built; `other_bytes` is the rest of the peak. */
    weights_bytes: number;
    adapter_and_optimizer_bytes: number;
    /** The activation workspace (the workspace plan). */
    activation_bytes: number;
    /** Optimizer scratch, uniform blocks, readback buffers. */
    other_bytes: number;
    /** The same parts as the page's memory check (src/app/memory.ts) predicts them before allocating. */
    estimate: { weights_bytes: number; adapter_and_optimizer_bytes: number; activation_bytes: number; other_bytes: number };
    estimate_bytes: number;
    /** estimate_bytes / peak_memory_bytes - 1. */
    estimate_error: number;
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

  const source = o.ggufMix ? randomQuantizedSource(config, o.seed, o.ggufMix) : randomWeightsSource(config, o.seed);
  const model = await LlamaModel.load(gpu, source, { precision: o.weights ?? 'auto' });
  const weightFormats = matrixFormats(model.weights);
  const afterWeights = gpu.bufferAccounting.liveBytes;
  const adapter = new LoraAdapter(gpu, config, o.lora);
  adapter.initPeft(o.seed);
  const afterAdapter = gpu.bufferAccounting.liveBytes;

  const totalSteps = o.memoryOnly ? DRY_RUN_STEPS : o.warmup + o.steps;
  const shapes = new Map<string, MatmulTiming>();
  const kernelDispatches = new Map<string, number>();
  let dispatches = 0;
  const commandBuffersBefore = gpu.commandBufferCount;
  const stopObserving = gpu.observeDispatches((d) => {
    dispatches++;
    kernelDispatches.set(d.kernel.name, (kernelDispatches.get(d.kernel.name) ?? 0) + 1);
    const shape = matmulShape(d, weightFormats);
    if (!shape) return;
    const key = `${shape.kernel} ${shape.M} ${shape.N} ${shape.K} ${shape.accumulate} ${shape.weight_format} ${shape.lora_r}`;
    const known = shapes.get(key);
    if (known) known.calls_per_step++;
    else shapes.set(key, shape);
  });
  let durations: number[];
  let recompute: boolean;
  try {
    ({ durations, recompute } = await trainSteps(gpu, model, adapter, o, totalSteps, o.memoryOnly));
  } finally {
    stopObserving();
  }
  const commandBuffers = gpu.commandBufferCount - commandBuffersBefore;
  const peak = gpu.bufferAccounting.peakBytes - baseline;
  const bindGroupsAfter = gpu.bindGroupStats;
  const recordMs = o.memoryOnly ? durations.slice(1) : (await trainSteps(gpu, model, adapter, o, DRY_RUN_STEPS, true)).durations.slice(1);
  const timingMethod = o.familyTiming ?? (gpu.hasTimestamps ? 'timestamp-query' : 'alone');
  const profile = o.memoryOnly
    ? null
    : await profileStep(
        gpu,
        async () => {
          await trainSteps(gpu, model, adapter, o, 1, false);
        },
        timingMethod,
        o.matmulMinMs,
      );
  const table = familyTable(kernelDispatches, totalSteps, profile);

  const matmul = [...shapes.values()].map((s) => ({ ...s, calls_per_step: s.calls_per_step / totalSteps }));
  const stepMs = o.memoryOnly ? [] : durations.slice(o.warmup);
  if (!o.memoryOnly) {
    for (const shape of matmul) {
      shape.ms_per_call = await timeMatmul(gpu, shape, o.matmulMinMs);
      shape.gflops = matmulFlops(shape) / (shape.ms_per_call * 1e6);
      if (o.matmulSchedules?.length) {
        const bySchedule: Partial<Record<MatmulSchedule, number>> = {};
        for (const schedule of o.matmulSchedules) bySchedule[schedule] = await timeMatmul(gpu, shape, o.matmulMinMs, schedule);
        shape.ms_per_call_by_schedule = bySchedule;
      }
    }
  }

  const tokensPerStep = o.batch * o.seq;
  const workspaceBytes = model.workspaceBytes;
  const weightsBytes = afterWeights - baseline;
  const adapterBytes = afterAdapter - afterWeights;
  const estimate = estimateTrainingMemory(config, memorySettings(o), deviceMemory(gpu), matrixFormatsOf(source, o.weights ?? 'auto'));
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const info = gpu.device.adapterInfo;
  return {
    benchmark: 'webtune-lora-train-step',
    mode: o.memoryOnly ? 'memory-only' : 'steps',
    mode_note: o.memoryOnly
      ? `model, adapter, optimizer and workspace built; ${DRY_RUN_STEPS} training steps recorded and validated but not executed, ` +
        'so every buffer a step allocates was allocated'
      : `${o.warmup} warm-up and ${o.steps} timed training steps through the trainer; ` +
        "a step's time is the gap between consecutive loss deliveries",
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
    gguf_mix: o.ggufMix ?? null,
    warmup: o.memoryOnly ? 0 : o.warmup,
    steps: o.memoryOnly ? 0 : o.steps,
    tokens_per_s: stepMs.length ? (tokensPerStep * stepMs.length) / (sum(stepMs) / 1000) : null,
    ms_per_step: stepMs.length
      ? { median: median(stepMs), mean: sum(stepMs) / stepMs.length, min: Math.min(...stepMs), max: Math.max(...stepMs) }
      : null,
    step_ms: stepMs,
    dispatches_per_step: dispatches / totalSteps,
    command_buffers_per_step: commandBuffers / totalSteps,
    schedules: { preference: gpu.schedules, gpu_schedules: gpu.gpuSchedules },
    kernel_timing: {
      method: profile?.method ?? null,
      note: !profile
        ? 'not timed: memory-only mode executes nothing'
        : profile.method === 'timestamp-query'
          ? 'one more training step with every dispatch in a compute pass of its own, timestamped at its start and end'
          : "one more training step recorded, then each family's dispatches replayed alone on the same buffers between device syncs",
      profiled_ms_per_step: profile ? sum([...profile.families.values()]) : null,
    },
    kernel_families: table.families,
    kernels: table.kernels,
    record_ms_per_step: median(recordMs),
    matmul_flops_per_step: sum(matmul.map((s) => matmulFlops(s) * s.calls_per_step)),
    matmul_ms_per_step: o.memoryOnly ? null : sum(matmul.map((s) => (s.ms_per_call ?? 0) * s.calls_per_step)),
    matmul,
    peak_memory_bytes: peak,
    peak_memory_gib: peak / 2 ** 30,
    peak_memory_source: 'peak of the summed sizes of all live GPU buffers the engine created (Gpu buffer accounting)',
    recompute: { mode: o.recompute ?? 'off', on: recompute },
    memory: {
      weights_bytes: weightsBytes,
      adapter_and_optimizer_bytes: adapterBytes,
      activation_bytes: workspaceBytes,
      other_bytes: peak - weightsBytes - adapterBytes - workspaceBytes,
      estimate: {
        weights_bytes: estimate.weightsBytes,
        adapter_and_optimizer_bytes: estimate.adapterBytes + estimate.optimizerBytes,
        activation_bytes: estimate.activationBytes,
        other_bytes: estimate.otherBytes,
      },
      estimate_bytes: estimate.totalBytes,
      estimate_error: estimate.totalBytes / peak - 1,
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
 * time (the gap between consecutive loss deliveries, the first measured from the start) and
 * whether the trainer recomputed activations.
 */
async function trainSteps(
  gpu: Gpu,
  model: LlamaModel,
  adapter: LoraAdapter,
  o: BenchOptions,
  steps: number,
  dryRun: boolean,
): Promise<{ durations: number[]; recompute: boolean }> {
  const settings = validateTrainSettings({ ...memorySettings(o), lr: 1e-4, epochs: 1, evalEvery: 0, checkpointEvery: 0, seed: o.seed });
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
  return { durations: times.slice(1).map((t, i) => t - times[i]), recompute: trainer.recompute };
}

/** The run's settings that the memory estimate and the trainer read. */
function memorySettings(o: BenchOptions) {
  return { lora: o.lora, batchSize: o.batch, maxLength: o.seq, recompute: o.recompute ?? 'off', memoryBudget: o.memoryBudget ?? null };
}

/** `vendor-architecture` in lower case, for result file names (`google-swiftshader`, `nvidia-hopper`). */
export function deviceSlug(device: Pick<BenchResult['device'], 'vendor' | 'architecture' | 'description'>): string {
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

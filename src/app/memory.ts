/**
 * GPU memory a training run needs, computed from the model config and the settings before any
 * buffer exists, so the page can refuse settings that cannot work instead of failing after minutes
 * of loading, and so `recompute: 'auto'` can decide before the first step. Every part is computed
 * the way the engine allocates it: the activation figure adds up the workspace plan that the model
 * allocates from (src/model/workspace-plan.ts), and the rest follows the optimizer's, the uniform
 * pool's and the trainer's loss readbacks' own sizes, so the estimate matches the benchmark's
 * measured peak (`npm run -s bench -- --memory-only`).
 */
import { allocatedSize, type Gpu, readbackSize, UNIFORM_POOL_BYTES } from '../gpu/context';
import { gradNormScratchFloats } from '../kernels/grad-norm';
import { splitScratchBytes } from '../kernels/matmul-vec4';
import type { LoraConfig } from '../lora/config';
import { planLoraLayout } from '../lora/layout';
import type { ModelConfig } from '../model/config';
import { packedBytes, type WeightFormat } from '../model/weight-format';
import { expectedTensorShapes } from '../model/weights';
import { planBufferSizes, planWorkspace } from '../model/workspace-plan';
import { LOSS_LAG, type RecomputeMode } from '../train/settings';
import type { MemoryBudget, MemoryEstimate } from './api';

export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** What the estimate needs from the device: its buffer limits, and its memory where the browser reports it. */
export interface DeviceMemory {
  limits: DeviceLimits;
  /** Device-local memory of the adapter in bytes, or null where the browser does not say (`adapterMemoryBytes`). */
  adapterMemoryBytes: number | null;
  /** Whether the kernels take their GPU schedules there (`Gpu.gpuSchedules`), whose split-K needs a scratch. Default false. */
  gpuSchedules?: boolean;
}

/** The settings the estimate depends on (a subset of TrainSettings). */
export interface MemorySettings {
  lora: LoraConfig;
  batchSize: number;
  maxLength: number;
  /** Micro-batches per optimizer step: their loss readbacks are in flight together. Default 1. */
  gradAccum?: number;
  /** Default 'off'. */
  recompute?: RecomputeMode;
  /** Bytes; null or absent: the device's budget. */
  memoryBudget?: number | null;
}

/**
 * How the frozen weights are counted: one storage format for every matrix or each matrix's own
 * (`matrixFormats`, src/model/gpu-weights.ts: a quantized GGUF's block formats), estimated tensor
 * by tensor, or the bytes the uploaded weights really take (`GpuWeights.bytes`) once the model is on the GPU.
 */
export type WeightsSize = WeightFormat | ReadonlyMap<string, WeightFormat> | { bytes: number };

/** Used when WebGPU reports no memory size: a laptop GPU with a few GB to spare. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 4 * 2 ** 30;
/** Of the memory an adapter reports, the share a run plans for: the browser, the page and other tabs need the rest. */
export const ADAPTER_MEMORY_SHARE = 0.8;

/**
 * The memory a run may plan for: the user's setting; else ADAPTER_MEMORY_SHARE of the adapter's
 * device-local memory where the browser reports it (Chromium's `GPUAdapterInfo.memoryHeaps`, with
 * WebGPU developer features on); else DEFAULT_MEMORY_BUDGET_BYTES. Buffer-size limits are not a
 * budget: a device can allow 4 GiB buffers on 2 GiB of memory.
 */
export function memoryBudget(setting: number | null | undefined, adapterMemoryBytes: number | null): MemoryBudget {
  if (setting) return { bytes: setting, source: 'setting' };
  if (adapterMemoryBytes) return { bytes: Math.floor(ADAPTER_MEMORY_SHARE * adapterMemoryBytes), source: 'adapter' };
  return { bytes: DEFAULT_MEMORY_BUDGET_BYTES, source: 'default' };
}

/** The sum of the device-local memory heaps an adapter reports, or null where it reports none. */
export function adapterMemoryBytes(info: GPUAdapterInfo | undefined): number | null {
  const heaps = (info as { memoryHeaps?: { size: number; properties: number }[] } | undefined)?.memoryHeaps;
  const DEVICE_LOCAL = 0x1;
  const local = (heaps ?? []).filter((heap) => heap.properties & DEVICE_LOCAL).reduce((sum, heap) => sum + Number(heap.size), 0);
  return local > 0 ? local : null;
}

/** The device's part of the estimate, from a Gpu. */
export function deviceMemory(gpu: Gpu): DeviceMemory {
  return { limits: gpu.limits, adapterMemoryBytes: adapterMemoryBytes(gpu.device.adapterInfo), gpuSchedules: gpu.gpuSchedules };
}

/**
 * Bytes of one frozen tensor on the GPU in `format`, as the upload allocates it (16-bit formats pack
 * two values per u32; block formats are their blocks, Q4_K 4.5 bits a value, padded to a word).
 */
export function weightTensorBytes(shape: readonly number[], format: WeightFormat): number {
  return allocatedSize(
    packedBytes(
      format,
      shape.reduce((a, b) => a * b, 1),
    ),
  );
}

export function estimateTrainingMemory(
  config: ModelConfig,
  settings: MemorySettings,
  device: DeviceMemory,
  weights: WeightsSize = 'f32',
): MemoryEstimate {
  const problems: string[] = [];
  const bindingLimit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  const vocabShaped = new Set(['model.embed_tokens.weight', 'lm_head.weight']);
  // Given the uploaded size, the largest tensor is checked as if in f32 (an upper bound).
  const formatOf = (name: string): WeightFormat =>
    typeof weights === 'string' ? weights : 'bytes' in weights ? 'f32' : (weights.get(name) ?? 'f32');

  let weightsBytes = 0;
  let largestWeight = 0;
  for (const [name, shape] of expectedTensorShapes(config)) {
    // Matrices are stored in the weight format; norms and biases stay f32 (src/model/gpu-weights.ts).
    const tensorFormat = shape.length === 2 ? formatOf(name) : 'f32';
    const bytes = weightTensorBytes(shape, tensorFormat);
    weightsBytes += bytes;
    // Vocabulary matrices are split into binding-sized pieces; one row must still fit.
    largestWeight = Math.max(largestWeight, vocabShaped.has(name) ? weightTensorBytes([config.hiddenSize], tensorFormat) : bytes);
  }
  if (typeof weights !== 'string' && 'bytes' in weights) weightsBytes = weights.bytes;

  const layout = planLoraLayout(config, settings.lora);
  const flatBytes = allocatedSize(layout.totalFloats * 4);
  const trainableParameters = layout.modules.reduce((sum, m) => sum + layout.r * (m.inFeatures + m.outFeatures), 0);
  // AdamW's grad-norm partials and [norm, clip]; the uniform pool; the loss readbacks in flight (LOSS_LAG steps behind);
  // the matmul's split-K scratch.
  const M = settings.batchSize * settings.maxLength;
  const otherBytes =
    allocatedSize(gradNormScratchFloats(layout.totalFloats) * 4) +
    allocatedSize(8) +
    UNIFORM_POOL_BYTES +
    (LOSS_LAG + 1) * (settings.gradAccum ?? 1) * readbackSize(M * 4) +
    splitScratchBytes(M, device.gpuSchedules ?? false);

  const workspace = (recompute: boolean) =>
    planBufferSizes(planWorkspace(config, M, recompute ? 'train-recompute' : 'train', settings.lora));
  const fixedBytes = weightsBytes + 4 * flatBytes + otherBytes;
  const sum = (sizes: number[]) => sizes.reduce((a, b) => a + b, 0);
  const withoutBytes = fixedBytes + sum(workspace(false));
  const withBytes = fixedBytes + sum(workspace(true));
  const budget = memoryBudget(settings.memoryBudget, device.adapterMemoryBytes);
  const mode = settings.recompute ?? 'off';
  const on = mode === 'on' || (mode === 'auto' && withoutBytes > budget.bytes);
  const activations = workspace(on);
  const activationBytes = sum(activations);
  const largestBufferBytes = Math.max(largestWeight, flatBytes, ...activations);

  if (settings.maxLength > config.maxPositionEmbeddings) {
    problems.push(
      `Max length ${settings.maxLength} is longer than the ${config.maxPositionEmbeddings} positions this model was trained on; ` +
        `use ${config.maxPositionEmbeddings} or less.`,
    );
  }
  if (largestBufferBytes > bindingLimit) {
    problems.push(
      `One GPU buffer would need ${formatMiB(largestBufferBytes)}, but this device binds at most ${formatMiB(bindingLimit)} at once. ` +
        'Lower the batch size or the max length.',
    );
  }
  const totalBytes = fixedBytes + activationBytes;
  return {
    weightsBytes,
    adapterBytes: 2 * flatBytes,
    optimizerBytes: 2 * flatBytes,
    activationBytes,
    otherBytes,
    totalBytes,
    trainableParameters,
    largestBufferBytes,
    fits: problems.length === 0,
    problems,
    recompute: { mode, on, withoutBytes, withBytes },
    budget,
    overBudget: totalBytes > budget.bytes,
  };
}

/** Whether a run with these settings recomputes activations (settings.recompute, 'auto' decided against the budget). */
export function recomputeFor(config: ModelConfig, settings: MemorySettings, device: DeviceMemory, weights: WeightsSize = 'f32'): boolean {
  return estimateTrainingMemory(config, settings, device, weights).recompute.on;
}

function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

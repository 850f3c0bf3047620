/**
 * GPU memory a training run needs, computed from the model config and the settings before any
 * buffer exists, so the page can refuse settings that cannot work instead of failing after minutes
 * of loading. The activation figure follows Workspace's buffers one by one (tests/worker/memory
 * test compares it with a real Workspace, so the two cannot drift apart silently).
 */
import { crossEntropyChunkRows } from '../kernels/cross-entropy';
import type { LoraConfig } from '../lora/config';
import { planLoraLayout } from '../lora/layout';
import type { ModelConfig } from '../model/config';
import { expectedTensorShapes } from '../model/weights';
import type { MemoryEstimate } from './api';

/** LlamaModel's budget for the cross-entropy logits scratch (CE_SCRATCH_BYTES in llama.ts). */
const CE_SCRATCH_BYTES = 32 * 1024 * 1024;

/** What Gpu.createBuffer really allocates for a request of `bytes`. */
const allocated = (bytes: number) => Math.max(16, Math.ceil(bytes / 16) * 16);

export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** Sizes of every buffer a training Workspace allocates for M tokens (mirrors workspace.ts). */
export function trainingWorkspaceBuffers(config: ModelConfig, M: number, lora: LoraConfig): number[] {
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  const layout = planLoraLayout(config, lora);
  const dropout = lora.dropout > 0;
  const floats: number[] = [];
  for (const module of layout.modules) {
    floats.push(M * layout.r);
    if (dropout) floats.push(M * module.inFeatures);
  }
  const perLayer = [M, M * C, M * qDim, M * kvDim, M * kvDim, M * qDim, 2 * M * config.numHeads, M * C, M, M * C, M * I, M * I, M * I];
  for (let l = 0; l < config.numLayers; l++) floats.push(...perLayer);
  for (let i = 0; i < config.numLayers + 1; i++) floats.push(M * C);
  const ceChunk = Math.min(crossEntropyChunkRows(M, CE_SCRATCH_BYTES), config.vocabSize);
  floats.push(M * C, M, M * C, M, M, M, M * 4, M * ceChunk);
  floats.push(M * C, M * C, M * qDim, M * kvDim, M * kvDim, M * qDim, M * I, M * I, M * I, M * layout.r);
  floats.push(dropout ? M * Math.max(C, qDim, I) : 1);
  return floats.map((n) => allocated(n * 4));
}

export function estimateTrainingMemory(
  config: ModelConfig,
  settings: { lora: LoraConfig; batchSize: number; maxLength: number },
  limits: DeviceLimits,
): MemoryEstimate {
  const problems: string[] = [];
  const bindingLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const vocabShaped = new Set(['model.embed_tokens.weight', 'lm_head.weight']);

  let weightsBytes = 0;
  let largestWeight = 0;
  for (const [name, shape] of expectedTensorShapes(config)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    weightsBytes += bytes;
    // Vocabulary matrices are split into binding-sized pieces; one row must still fit.
    largestWeight = Math.max(largestWeight, vocabShaped.has(name) ? config.hiddenSize * 4 : bytes);
  }

  const layout = planLoraLayout(config, settings.lora);
  const flatBytes = allocated(layout.totalFloats * 4);
  const trainableParameters = layout.modules.reduce((sum, m) => sum + layout.r * (m.inFeatures + m.outFeatures), 0);

  const M = settings.batchSize * settings.maxLength;
  const workspace = trainingWorkspaceBuffers(config, M, settings.lora);
  const activationBytes = workspace.reduce((a, b) => a + b, 0);
  const largestBufferBytes = Math.max(largestWeight, flatBytes, ...workspace);

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
  return {
    weightsBytes,
    adapterBytes: 2 * flatBytes,
    optimizerBytes: 2 * flatBytes,
    activationBytes,
    totalBytes: weightsBytes + 4 * flatBytes + activationBytes,
    trainableParameters,
    largestBufferBytes,
    fits: problems.length === 0,
    problems,
  };
}

function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

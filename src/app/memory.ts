/**
 * GPU memory a training run needs, computed from the model config and the settings before any
 * buffer exists, so the page can refuse settings that cannot work instead of failing after minutes
 * of loading. The activation figure adds up the workspace plan that the model allocates from
 * (src/model/workspace-plan.ts), so the two cannot drift apart.
 */
import { allocatedSize } from '../gpu/context';
import type { LoraConfig } from '../lora/config';
import { planLoraLayout } from '../lora/layout';
import type { ModelConfig } from '../model/config';
import { bytesPerWeight, type WeightFormat } from '../model/weight-format';
import { expectedTensorShapes } from '../model/weights';
import { planBufferSizes, planWorkspace } from '../model/workspace-plan';
import type { MemoryEstimate } from './api';

export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** `weightFormat`: how the weight matrices are stored on the GPU (norms and biases are f32 in every format). */
export function estimateTrainingMemory(
  config: ModelConfig,
  settings: { lora: LoraConfig; batchSize: number; maxLength: number },
  limits: DeviceLimits,
  weightFormat: WeightFormat = 'f32',
): MemoryEstimate {
  const problems: string[] = [];
  const bindingLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const vocabShaped = new Set(['model.embed_tokens.weight', 'lm_head.weight']);

  let weightsBytes = 0;
  let largestWeight = 0;
  for (const [name, shape] of expectedTensorShapes(config)) {
    const elementBytes = shape.length === 2 ? bytesPerWeight(weightFormat) : 4;
    const bytes = shape.reduce((a, b) => a * b, 1) * elementBytes;
    weightsBytes += bytes;
    // Vocabulary matrices are split into binding-sized pieces; one row must still fit.
    largestWeight = Math.max(largestWeight, vocabShaped.has(name) ? config.hiddenSize * elementBytes : bytes);
  }

  const layout = planLoraLayout(config, settings.lora);
  const flatBytes = allocatedSize(layout.totalFloats * 4);
  const trainableParameters = layout.modules.reduce((sum, m) => sum + layout.r * (m.inFeatures + m.outFeatures), 0);

  const M = settings.batchSize * settings.maxLength;
  const workspace = planBufferSizes(planWorkspace(config, M, true, settings.lora));
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

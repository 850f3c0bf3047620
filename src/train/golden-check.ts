import type { Gpu } from '../gpu/context';
import { AdapterMismatchError, LoraAdapter, type HostTensor } from '../lora/adapter';
import { type LoraConfig, validateLoraConfig } from '../lora/config';
import type { ModelConfig } from '../model/config';
import type { GoldenCase } from '../model/golden';
import { GoldenCaseError } from '../model/errors';
import { LlamaModel } from '../model/llama';
import type { WeightFormat, WeightPrecision } from '../model/weight-format';
import type { ModelWeightsSource } from '../model/weights';
import { makeBatch } from './batch';
import { AdamW, type AdamWSettings } from './optimizer';

/** Acceptance bars for a golden case (f32 engine against PyTorch float32). */
export const GOLDEN_TOLERANCE = { lossRelErr: 1e-4, gradMaxRelErr: 2e-3, adamwMaxAbsErr: 1e-5 };

export interface GoldenResult {
  case: string;
  /** The gradients came from a backward pass with activation recomputation. */
  recompute: boolean;
  loss: number;
  ref_loss: number;
  loss_rel_err: number;
  /** Worst over adapted tensors of max|ours - ref| / max|ref|. */
  grad_max_rel_err: number;
  worst_grad_tensor: string;
  /**
   * One AdamW step from the case's initial adapter with the case's own gradients, against the case's
   * stepped adapter: what the golden format defines (adapter_after_one_adamw_step.safetensors is
   * "one AdamW step from the init with those gradients"), so it judges the optimizer alone.
   */
  adamw_max_abs_err: number;
  /**
   * The same step from our own gradients (end to end). AdamW's first step is lr * g / (|g| + eps), so
   * where |g| is near the f32 noise of computing it (millions of parameters at real shapes) its sign
   * can flip and this can reach 2 lr although gradients and optimizer both hold their bars.
   */
  adamw_end_to_end_max_abs_err: number;
  /** |reference gradient| of the element where adamw_end_to_end_max_abs_err is attained. */
  adamw_worst_element_ref_grad: number;
  /** Last-position logits of row 0 (first 8) against the case, when the case records them. */
  logits_max_abs_err: number | null;
  /** How the frozen weight matrices were stored on the GPU. */
  weights: WeightFormat | 'mixed';
  ok: boolean;
}

/**
 * Runs one golden case through the whole engine: loss and adapter gradients of the batch from
 * the case's initial adapter (with activation recomputation when `recompute`), then one AdamW
 * step, each compared with PyTorch's numbers. The weights are stored on the GPU as `precision`
 * says (default 'auto': as in the checkpoint).
 */
export async function checkGoldenCase(
  gpu: Gpu,
  golden: GoldenCase,
  weights: ModelWeightsSource,
  { recompute = false, precision = 'auto' }: { recompute?: boolean; precision?: WeightPrecision } = {},
): Promise<GoldenResult> {
  if (golden.lora.dropout > 0) {
    throw new GoldenCaseError(
      `${golden.name}: lora_dropout is ${golden.lora.dropout}; golden cases must use 0 (dropout masks cannot match PyTorch's RNG)`,
    );
  }
  const model = await LlamaModel.load(gpu, weights, { precision });
  const lora = validateLoraConfig({
    r: golden.lora.r,
    alpha: golden.lora.alpha,
    dropout: 0,
    targets: golden.lora.targetModules,
    useRslora: golden.lora.useRslora,
  });
  const adapter = new LoraAdapter(gpu, model.config, lora);
  if (Math.abs(adapter.scaling - golden.lora.scaling) > 1e-9 * Math.abs(golden.lora.scaling)) {
    throw new GoldenCaseError(`${golden.name}: case scaling ${golden.lora.scaling} disagrees with alpha/r = ${adapter.scaling}`);
  }
  adapter.loadTensors(golden.adapterInit, `${golden.name}/adapter_init.safetensors`);

  const batch = makeBatch(golden.inputIds, golden.labels);
  model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount, recompute });
  const loss = (await model.readLossSum(batch)) / batch.targetCount;
  const grads = await adapter.readGradients();
  const { worst, worstName } = worstRelativeError(grads, golden.grads);

  const adamw = {
    lr: golden.adamw.lr,
    beta1: golden.adamw.betas[0],
    beta2: golden.adamw.betas[1],
    eps: golden.adamw.eps,
    weightDecay: golden.adamw.weightDecay,
    maxGradNorm: 0,
  };
  new AdamW(gpu, adapter).apply(adamw);
  const stepped = await adapter.readTensors();
  const adamwErr = maxAbsError(stepped, golden.adapterAfterStep);
  const worstStep = worstAbsElement(stepped, golden.adapterAfterStep);
  const worstRefGrad = worstStep ? Math.abs(golden.grads.get(worstStep.name)!.data[worstStep.index]) : 0;

  const adamwOnRefErr = await adamwOnReferenceGradients(gpu, model.config, lora, golden, adamw);

  let logitsErr: number | null = null;
  if (golden.lastPositionLogitsRow0First8) {
    adapter.loadTensors(golden.adapterInit, `${golden.name}/adapter_init.safetensors`);
    const rowBatch = makeBatch([golden.inputIds[0]]);
    const logits = await model.lastPositionLogits(rowBatch, adapter);
    logitsErr = 0;
    golden.lastPositionLogitsRow0First8.forEach((ref, i) => {
      logitsErr = Math.max(logitsErr!, Math.abs(logits[i] - ref));
    });
  }

  const lossRelErr = Number.isNaN(loss) ? Infinity : Math.abs(loss - golden.loss) / Math.abs(golden.loss);
  return {
    case: golden.name,
    recompute,
    loss,
    ref_loss: golden.loss,
    loss_rel_err: lossRelErr,
    grad_max_rel_err: worst,
    worst_grad_tensor: worstName,
    adamw_max_abs_err: adamwOnRefErr,
    adamw_end_to_end_max_abs_err: adamwErr,
    adamw_worst_element_ref_grad: worstRefGrad,
    logits_max_abs_err: logitsErr,
    weights: model.precision,
    ok:
      lossRelErr <= GOLDEN_TOLERANCE.lossRelErr &&
      worst <= GOLDEN_TOLERANCE.gradMaxRelErr &&
      adamwOnRefErr <= GOLDEN_TOLERANCE.adamwMaxAbsErr,
  };
}

/**
 * Worst over tensors of max|ours - ref| / max|ref|. A NaN anywhere, or tensors of different lengths,
 * count as an infinite error: `Math.max` would carry a NaN along and every bar compares false
 * against it, but a silent skip would let a broken gradient pass.
 */
export function worstRelativeError(ours: Map<string, HostTensor>, ref: Map<string, HostTensor>): { worst: number; worstName: string } {
  let worst = 0;
  let worstName = '';
  for (const [name, expected] of ref) {
    const actual = requireTensor(ours, name);
    let maxDiff = actual.data.length === expected.data.length ? 0 : Infinity;
    let maxRef = 0;
    for (let i = 0; i < expected.data.length && maxDiff < Infinity; i++) {
      const diff = Math.abs(actual.data[i] - expected.data[i]);
      maxDiff = Number.isNaN(diff) ? Infinity : Math.max(maxDiff, diff);
      maxRef = Math.max(maxRef, Math.abs(expected.data[i]));
    }
    const rel = maxDiff === Infinity ? Infinity : maxRef > 0 ? maxDiff / maxRef : maxDiff;
    if (rel >= worst) {
      worst = rel;
      worstName = name;
    }
  }
  return { worst, worstName };
}

/**
 * One AdamW step from the case's initial adapter and the case's gradients: the case's gradients go
 * into a second adapter's gradient buffer through its parameter buffer, then its initial weights
 * replace them. Gradients that do not fit the adapter (a broken case) are an infinite error.
 */
async function adamwOnReferenceGradients(
  gpu: Gpu,
  config: ModelConfig,
  lora: LoraConfig,
  golden: GoldenCase,
  adamw: AdamWSettings,
): Promise<number> {
  const adapter = new LoraAdapter(gpu, config, lora);
  try {
    adapter.loadTensors(golden.grads, `${golden.name}/grads.safetensors`);
    gpu.copy(adapter.params, adapter.grads, adapter.layout.totalFloats * 4);
    adapter.loadTensors(golden.adapterInit, `${golden.name}/adapter_init.safetensors`);
    new AdamW(gpu, adapter).apply(adamw);
    return maxAbsError(await adapter.readTensors(), golden.adapterAfterStep);
  } catch (error) {
    if (error instanceof AdapterMismatchError) return Infinity;
    throw error;
  } finally {
    // Its construction recorded clears of its buffers, which must be submitted before they go.
    gpu.flush();
    adapter.destroy();
  }
}

/** Where |ours - ref| is largest (tensor name and element), or null when nothing differs. */
function worstAbsElement(ours: Map<string, HostTensor>, ref: Map<string, HostTensor>): { name: string; index: number } | null {
  let worst: { name: string; index: number } | null = null;
  let largest = 0;
  for (const [name, expected] of ref) {
    const actual = requireTensor(ours, name);
    for (let i = 0; i < Math.min(actual.data.length, expected.data.length); i++) {
      const diff = Math.abs(actual.data[i] - expected.data[i]);
      if (diff > largest) {
        largest = diff;
        worst = { name, index: i };
      }
    }
  }
  return worst;
}

/** max|ours - ref| over all tensors; NaN or a length mismatch is infinite, as in worstRelativeError. */
export function maxAbsError(ours: Map<string, HostTensor>, ref: Map<string, HostTensor>): number {
  let worst = 0;
  for (const [name, expected] of ref) {
    const actual = requireTensor(ours, name);
    if (actual.data.length !== expected.data.length) return Infinity;
    for (let i = 0; i < expected.data.length; i++) {
      const diff = Math.abs(actual.data[i] - expected.data[i]);
      if (Number.isNaN(diff)) return Infinity;
      worst = Math.max(worst, diff);
    }
  }
  return worst;
}

function requireTensor(tensors: Map<string, HostTensor>, name: string): HostTensor {
  const tensor = tensors.get(name);
  if (!tensor) throw new GoldenCaseError(`the golden case has tensor ${name}, which this adapter configuration does not produce`);
  return tensor;
}

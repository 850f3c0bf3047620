import type { Gpu } from '../gpu/context';
import { LoraAdapter, type HostTensor } from '../lora/adapter';
import { validateLoraConfig } from '../lora/config';
import type { GoldenCase } from '../model/golden';
import { GoldenCaseError } from '../model/errors';
import { LlamaModel } from '../model/llama';
import type { WeightFormat, WeightPrecision } from '../model/weight-format';
import type { ModelWeightsSource } from '../model/weights';
import { makeBatch } from './batch';
import { AdamW } from './optimizer';

/** Acceptance bars for a golden case (f32 engine against PyTorch float32). */
export const GOLDEN_TOLERANCE = { lossRelErr: 1e-4, gradMaxRelErr: 2e-3, adamwMaxAbsErr: 1e-5 };

export interface GoldenResult {
  case: string;
  loss: number;
  ref_loss: number;
  loss_rel_err: number;
  /** Worst over adapted tensors of max|ours - ref| / max|ref|. */
  grad_max_rel_err: number;
  worst_grad_tensor: string;
  adamw_max_abs_err: number;
  /** Last-position logits of row 0 (first 8) against the case, when the case records them. */
  logits_max_abs_err: number | null;
  /** How the frozen weight matrices were stored on the GPU. */
  weights: WeightFormat | 'mixed';
  ok: boolean;
}

/**
 * Runs one golden case through the whole engine: loss and adapter gradients of the batch from
 * the case's initial adapter, then one AdamW step, each compared with PyTorch's numbers. The
 * weights are stored on the GPU as `precision` says (default 'auto': as in the checkpoint).
 */
export async function checkGoldenCase(
  gpu: Gpu,
  golden: GoldenCase,
  weights: ModelWeightsSource,
  { precision = 'auto' }: { precision?: WeightPrecision } = {},
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
  model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount });
  const loss = (await model.readLossSum(batch)) / batch.targetCount;
  const grads = await adapter.readGradients();
  const { worst, worstName } = worstRelativeError(grads, golden.grads);

  const optimizer = new AdamW(gpu, adapter);
  optimizer.apply({
    lr: golden.adamw.lr,
    beta1: golden.adamw.betas[0],
    beta2: golden.adamw.betas[1],
    eps: golden.adamw.eps,
    weightDecay: golden.adamw.weightDecay,
    maxGradNorm: 0,
  });
  const stepped = await adapter.readTensors();
  const adamwErr = maxAbsError(stepped, golden.adapterAfterStep);

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
    loss,
    ref_loss: golden.loss,
    loss_rel_err: lossRelErr,
    grad_max_rel_err: worst,
    worst_grad_tensor: worstName,
    adamw_max_abs_err: adamwErr,
    logits_max_abs_err: logitsErr,
    weights: model.precision,
    ok: lossRelErr <= GOLDEN_TOLERANCE.lossRelErr && worst <= GOLDEN_TOLERANCE.gradMaxRelErr && adamwErr <= GOLDEN_TOLERANCE.adamwMaxAbsErr,
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

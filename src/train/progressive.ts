/**
 * Continued and progressive LoRA training.
 *
 * Continuing from an adapter (`train --init-adapter`, phase 2 of a progressive run): the new run
 * trains the existing A and B instead of a PEFT initialisation. Rules:
 * - rank and target modules must equal the init adapter's (else InitAdapterError): A and B are
 *   [r, in] and [out, r] per target, so another rank or target set is another adapter;
 * - alpha (and rsLoRA) may change: B is multiplied by old scaling / new scaling, so the model
 *   computes exactly what it did with the init adapter and only the later updates feel the new
 *   scaling;
 * - dropout and every optimizer setting may change; the AdamW moments and the learning-rate
 *   schedule start afresh, as in a new run.
 *
 * Progressive mode: phase 1 trains on data A, phase 2 continues the phase-1 adapter on data B.
 * The forgetting report gives the eval loss on A's eval data after phase 1 and after phase 2.
 */
import type { PrepTokenizer } from '../data/prepare';
import type { DatasetRow } from '../data/types';
import type { AdapterTensor, AdapterTensors } from '../export/adapter';
import type { Gpu } from '../gpu/context';
import { LoraAdapter } from '../lora/adapter';
import { type LoraConfig, loraScaling } from '../lora/config';
import type { ModelConfig } from '../model/config';
import type { LlamaModel } from '../model/llama';
import { padTokenId, prepareRunData } from './pipeline';
import type { TrainSettings } from './settings';
import { LoraTrainer, type TrainControl, type TrainProgress, type TrainResult } from './trainer';

export class InitAdapterError extends Error {
  override name = 'InitAdapterError';
}

export class ProgressiveError extends Error {
  override name = 'ProgressiveError';
}

/**
 * The adapter a run starts from: `init` (checked against `lora` and rescaled as the module
 * comment says) or, without one, PEFT's initialisation seeded with `seed`.
 */
export function startingAdapter(
  gpu: Gpu,
  model: ModelConfig,
  lora: LoraConfig,
  seed: number,
  init: AdapterTensors | null,
  source = 'init adapter',
): LoraAdapter {
  const adapter = new LoraAdapter(gpu, model, lora);
  if (!init) {
    adapter.initPeft(seed);
    return adapter;
  }
  if (init.config.r !== lora.r) {
    throw new InitAdapterError(
      `${source} has rank ${init.config.r} but the run asks for r=${lora.r}: continue with the same rank (leave --r out to take it from the adapter).`,
    );
  }
  const same = init.config.targets.length === lora.targets.length && init.config.targets.every((t) => lora.targets.includes(t));
  if (!same) {
    throw new InitAdapterError(
      `${source} adapts ${init.config.targets.join(', ')} but the run asks for ${lora.targets.join(', ')}: ` +
        'continue with the same target modules (leave --targets out to take them from the adapter).',
    );
  }
  const ratio = loraScaling(init.config) / loraScaling(lora);
  const tensors =
    ratio === 1
      ? init.tensors
      : new Map<string, AdapterTensor>(
          [...init.tensors].map(([name, t]) => [name, name.endsWith('.lora_B.weight') ? { shape: t.shape, data: t.data.map((x) => x * ratio) } : t]),
        );
  adapter.loadTensors(tensors, source);
  return adapter;
}

export interface ProgressivePhaseInput {
  rows: readonly DatasetRow[];
  /** Held-out rows; null: hold out settings.evalFraction of `rows`. */
  evalRows: readonly DatasetRow[] | null;
  settings: TrainSettings;
}

export interface ProgressiveHooks {
  onPhase?(phase: 1 | 2, stage: 'eval-before' | 'training' | 'eval-after'): void;
  onProgress?(phase: 1 | 2, progress: TrainProgress): void;
  /** Polled between optimizer steps; a pause ends the run like a stop (phases do not resume). */
  control?(): TrainControl;
}

export interface ProgressiveOptions {
  phase1: ProgressivePhaseInput;
  /** Its LoRA settings must have phase 1's rank and targets (see startingAdapter). */
  phase2: ProgressivePhaseInput;
  /** Phase 1 continues this adapter instead of starting from PEFT's initialisation. */
  initAdapter?: AdapterTensors | null;
  hooks?: ProgressiveHooks;
}

export interface PhaseOutcome {
  result: TrainResult;
  trainExamples: number;
  evalExamples: number;
  /** This phase's eval data, before and after its training. */
  evalLossBefore: number | null;
  evalLossAfter: number | null;
}

export interface ForgettingReport {
  /** Mean token loss on the phase-1 eval data with the phase-1 adapter. */
  phase1EvalLossAfterPhase1: number;
  /** The same data with the final adapter. */
  phase1EvalLossAfterPhase2: number;
  /** after phase 2 - after phase 1: positive when phase 2 undid some of phase 1. */
  forgetting: number;
}

export interface ProgressiveResult {
  /** 'stopped' when the control hook ended a phase early (pause counts as stop). */
  status: 'completed' | 'stopped';
  phase1: PhaseOutcome;
  /** null when phase 1 was stopped: phase 2 then does not run. */
  phase2: PhaseOutcome | null;
  /** With the adapter as phase 2 left it (stopped or not); null when phase 2 did not run. */
  forgetting: ForgettingReport | null;
  /** The phase-1 weights as PEFT-named tensors (to save as an adapter of its own). */
  phase1Adapter: AdapterTensors;
  /** The final adapter on the GPU: phase 2's, or phase 1's when phase 2 did not run. */
  adapter: LoraAdapter;
}

/** Phase 1 on `phase1`, then phase 2 on `phase2` from the phase-1 weights, and the forgetting report. */
export async function runProgressive(
  gpu: Gpu,
  model: LlamaModel,
  tok: PrepTokenizer,
  opts: ProgressiveOptions,
): Promise<ProgressiveResult> {
  const { phase1, phase2, hooks = {} } = opts;
  const { lora } = phase1.settings;
  if (phase2.settings.lora.r !== lora.r || phase2.settings.lora.targets.join() !== lora.targets.join()) {
    throw new ProgressiveError(
      `phase 2 must train the phase-1 adapter: same rank and targets (phase 1: r=${lora.r} on ${lora.targets.join(', ')}; ` +
        `phase 2: r=${phase2.settings.lora.r} on ${phase2.settings.lora.targets.join(', ')}).`,
    );
  }
  const data1 = prepareRunData(phase1.rows, phase1.evalRows, tok, phase1.settings);
  if (data1.eval.length === 0) {
    throw new ProgressiveError('phase 1 has no eval examples, so forgetting cannot be measured: give phase-1 eval data or an eval fraction above 0.');
  }
  const data2 = prepareRunData(phase2.rows, phase2.evalRows, tok, phase2.settings);
  const padId = padTokenId(tok);
  const adapter1 = startingAdapter(gpu, model.config, lora, phase1.settings.seed, opts.initAdapter ?? null);
  const trainer1 = new LoraTrainer(gpu, model, adapter1, phase1.settings, data1, padId);
  const outcome1 = await runPhase(1, trainer1, data1, hooks);
  const phase1Adapter: AdapterTensors = { config: lora, tensors: await adapter1.readTensors() };
  if (outcome1.result.status !== 'completed') {
    return { status: 'stopped', phase1: outcome1, phase2: null, forgetting: null, phase1Adapter, adapter: adapter1 };
  }

  // A second adapter rather than phase 1's: it starts with fresh AdamW moments and takes phase 2's
  // alpha (B rescaled) and dropout.
  const adapter2 = startingAdapter(gpu, model.config, phase2.settings.lora, phase2.settings.seed, phase1Adapter, 'the phase-1 adapter');
  adapter1.destroy();
  const trainer2 = new LoraTrainer(gpu, model, adapter2, phase2.settings, data2, padId);
  const outcome2 = await runPhase(2, trainer2, data2, hooks);
  const after1 = outcome1.evalLossAfter!;
  const after2 = (await trainer1.evalLoss(adapter2))!;
  return {
    status: outcome2.result.status === 'completed' ? 'completed' : 'stopped',
    phase1: outcome1,
    phase2: outcome2,
    forgetting: { phase1EvalLossAfterPhase1: after1, phase1EvalLossAfterPhase2: after2, forgetting: after2 - after1 },
    phase1Adapter,
    adapter: adapter2,
  };
}

async function runPhase(
  phase: 1 | 2,
  trainer: LoraTrainer,
  data: { train: readonly unknown[]; eval: readonly unknown[] },
  hooks: ProgressiveHooks,
): Promise<PhaseOutcome> {
  hooks.onPhase?.(phase, 'eval-before');
  const evalLossBefore = await trainer.evalLoss();
  hooks.onPhase?.(phase, 'training');
  const result = await trainer.run({
    onProgress: (p) => hooks.onProgress?.(phase, p),
    control: () => {
      const control = hooks.control?.() ?? 'continue';
      return control === 'pause' ? 'stop' : control;
    },
  });
  hooks.onPhase?.(phase, 'eval-after');
  // The trainer evaluates after its last step; a stopped phase has no fresh figure.
  const evalLossAfter = result.status === 'completed' && result.evalLoss !== null ? result.evalLoss : await trainer.evalLoss();
  return {
    result,
    trainExamples: data.train.length,
    evalExamples: data.eval.length,
    evalLossBefore,
    evalLossAfter,
  };
}

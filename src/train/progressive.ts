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
 * Progressive mode: phase 1 trains on data A, phase 2 continues the phase-1 adapter on data B, each
 * through the one run path (trainAdapter). The forgetting report gives the eval loss on A's eval
 * data after phase 1 and after phase 2. A paused run resumes in the phase it paused in.
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
import { optimizerSteps, type TrainSettings } from './settings';
import { type RunStage, trainAdapter } from './run';
import { type TrainCheckpoint, type TrainControl, LoraTrainer, type TrainProgress, type TrainResult } from './trainer';

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
      `${source} has rank ${init.config.r} but the run asks for r=${lora.r}: ` +
        'continue with the same rank (leave --r out to take it from the adapter).',
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
          [...init.tensors].map(([name, t]) => [
            name,
            name.endsWith('.lora_B.weight') ? { shape: t.shape, data: t.data.map((x) => x * ratio) } : t,
          ]),
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

export type Phase = 1 | 2;

export interface ProgressiveHooks {
  /** Both phases' optimizer steps, once the data is tokenized and before any training. */
  onPlan?(steps: [phase1: number, phase2: number]): Promise<void> | void;
  onPhase?(phase: Phase, stage: RunStage): void;
  /** A phase's eval loss before its training, as soon as it is measured (keep it: a resume does not measure it again). */
  onEvalBefore?(phase: Phase, loss: number | null): Promise<void> | void;
  onProgress?(phase: Phase, progress: TrainProgress): void;
  onCheckpoint?(phase: Phase, checkpoint: TrainCheckpoint): Promise<void>;
  /** Phase 1 is done and phase 2 about to start from its weights: keep its outcome, a resume of phase 2 needs it. */
  onPhaseDone?(phase: Phase, outcome: PhaseOutcome): Promise<void>;
  /** Polled between optimizer steps. */
  control?(): TrainControl;
}

/** Where a paused or interrupted progressive run continues. */
export interface ProgressiveResume {
  phase: Phase;
  checkpoint: TrainCheckpoint;
  /** That phase's eval loss before training, measured when it began. */
  evalLossBefore: number | null;
  /** Phase 1's outcome, when resuming phase 2. */
  phase1?: PhaseOutcome;
}

export interface ProgressiveOptions {
  phase1: ProgressivePhaseInput;
  /** Its LoRA settings must have phase 1's rank and targets (see startingAdapter). */
  phase2: ProgressivePhaseInput;
  /** Phase 1 continues this adapter instead of starting from PEFT's initialisation. */
  initAdapter?: AdapterTensors | null;
  hooks?: ProgressiveHooks;
  resume?: ProgressiveResume;
}

/** A phase's figures, plain data so that a run record can keep them. */
export interface PhaseOutcome {
  status: TrainResult['status'];
  steps: number;
  totalSteps: number;
  trainLossFirst: number | null;
  trainLossLast: number | null;
  tokensPerSecond: number;
  elapsedMs: number;
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
  /** 'stopped' when the control hook ended a phase early; phase 2 does not run after a stopped phase 1. */
  status: TrainResult['status'];
  phase1: PhaseOutcome;
  /** null when phase 2 did not run (or has not yet: a paused phase 1). */
  phase2: PhaseOutcome | null;
  /** With the adapter as phase 2 left it (stopped or not); null when phase 2 did not finish. */
  forgetting: ForgettingReport | null;
  /** The phase-1 weights as PEFT-named tensors; null when this call resumed in phase 2. */
  phase1Adapter: AdapterTensors | null;
  /** The latest adapter on the GPU (phase 2's, or phase 1's when phase 2 did not run); the caller destroys it. */
  adapter: LoraAdapter;
}

/** Phase 1 on `phase1`, then phase 2 on `phase2` from the phase-1 weights, and the forgetting report. */
export async function runProgressive(
  gpu: Gpu,
  model: LlamaModel,
  tok: PrepTokenizer,
  opts: ProgressiveOptions,
): Promise<ProgressiveResult> {
  const { phase1, phase2, hooks = {}, resume } = opts;
  const { lora } = phase1.settings;
  if (phase2.settings.lora.r !== lora.r || phase2.settings.lora.targets.join() !== lora.targets.join()) {
    throw new ProgressiveError(
      `phase 2 must train the phase-1 adapter: same rank and targets (phase 1: r=${lora.r} on ${lora.targets.join(', ')}; ` +
        `phase 2: r=${phase2.settings.lora.r} on ${phase2.settings.lora.targets.join(', ')}).`,
    );
  }
  const data1 = prepareRunData(phase1.rows, phase1.evalRows, tok, phase1.settings);
  if (data1.eval.length === 0) {
    throw new ProgressiveError(
      'phase 1 has no eval examples, so forgetting cannot be measured: give phase-1 eval data or an eval fraction above 0.',
    );
  }
  const data2 = prepareRunData(phase2.rows, phase2.evalRows, tok, phase2.settings);
  if (data2.train.length === 0) throw new ProgressiveError('phase 2 has no training examples left after tokenizing.');
  const padId = padTokenId(tok);
  await hooks.onPlan?.([optimizerSteps(data1.train.length, phase1.settings), optimizerSteps(data2.train.length, phase2.settings)]);

  let outcome1: PhaseOutcome;
  let phase1Adapter: AdapterTensors | null = null;
  let adapter2: LoraAdapter;
  let resume2: ProgressiveResume | undefined;
  if (resume?.phase === 2) {
    if (!resume.phase1) throw new ProgressiveError('resuming phase 2 needs the outcome of phase 1.');
    outcome1 = resume.phase1;
    adapter2 = new LoraAdapter(gpu, model.config, phase2.settings.lora);
    resume2 = resume;
  } else {
    const adapter1 = startingAdapter(gpu, model.config, lora, phase1.settings.seed, opts.initAdapter ?? null);
    const trainer1 = new LoraTrainer(gpu, model, adapter1, phase1.settings, data1, padId);
    try {
      outcome1 = await runPhase(1, trainer1, data1, hooks, resume);
    } catch (error) {
      adapter1.destroy();
      throw error;
    } finally {
      trainer1.destroy();
    }
    if (outcome1.status !== 'completed') {
      return { status: outcome1.status, phase1: outcome1, phase2: null, forgetting: null, phase1Adapter: null, adapter: adapter1 };
    }
    phase1Adapter = { config: lora, tensors: await adapter1.readTensors() };
    await hooks.onPhaseDone?.(1, outcome1);
    // A second adapter rather than phase 1's: it starts with fresh AdamW moments and takes phase 2's
    // alpha (B rescaled) and dropout.
    adapter2 = startingAdapter(gpu, model.config, phase2.settings.lora, phase2.settings.seed, phase1Adapter, 'the phase-1 adapter');
    adapter1.destroy();
  }
  const trainer2 = new LoraTrainer(gpu, model, adapter2, phase2.settings, data2, padId);
  try {
    return await finishPhase2();
  } catch (error) {
    adapter2.destroy();
    throw error;
  } finally {
    trainer2.destroy();
  }

  async function finishPhase2(): Promise<ProgressiveResult> {
    const outcome2 = await runPhase(2, trainer2, data2, hooks, resume2);
    if (outcome2.status === 'paused')
      return { status: 'paused', phase1: outcome1, phase2: outcome2, forgetting: null, phase1Adapter, adapter: adapter2 };
    const after1 = outcome1.evalLossAfter!;
    const after2 = (await trainer2.evalLoss(adapter2, data1.eval))!;
    return {
      status: outcome2.status,
      phase1: outcome1,
      phase2: outcome2,
      forgetting: { phase1EvalLossAfterPhase1: after1, phase1EvalLossAfterPhase2: after2, forgetting: after2 - after1 },
      phase1Adapter,
      adapter: adapter2,
    };
  }
}

async function runPhase(
  phase: Phase,
  trainer: LoraTrainer,
  data: { train: readonly unknown[]; eval: readonly unknown[] },
  hooks: ProgressiveHooks,
  resume: ProgressiveResume | undefined,
): Promise<PhaseOutcome> {
  const { result, evalLossBefore, evalLossAfter } = await trainAdapter(trainer, {
    resume: resume?.checkpoint,
    onStage: (stage) => hooks.onPhase?.(phase, stage),
    onEvalBefore: (loss) => hooks.onEvalBefore?.(phase, loss),
    hooks: {
      onProgress: (p) => hooks.onProgress?.(phase, p),
      onCheckpoint: hooks.onCheckpoint ? (c) => hooks.onCheckpoint!(phase, c) : undefined,
      control: hooks.control,
    },
  });
  return {
    status: result.status,
    steps: result.steps,
    totalSteps: result.totalSteps,
    trainLossFirst: result.trainLossFirst,
    trainLossLast: result.trainLossLast,
    tokensPerSecond: result.tokensPerSecond,
    elapsedMs: result.elapsedMs,
    trainExamples: data.train.length,
    evalExamples: data.eval.length,
    evalLossBefore: resume ? resume.evalLossBefore : evalLossBefore,
    evalLossAfter,
  };
}

import { type LoraConfig, validateLoraConfig } from '../lora/config';

export type LrSchedule = 'cosine' | 'linear' | 'constant';

/** Activation recomputation: on, off, or on when the run would exceed the GPU memory budget (src/app/memory.ts). */
export type RecomputeMode = 'auto' | 'on' | 'off';
export const RECOMPUTE_MODES: readonly RecomputeMode[] = ['auto', 'on', 'off'];

/** Everything a training run needs besides the model and the data. Defaults follow Hugging Face's Trainer. */
export interface TrainSettings {
  lora: LoraConfig;
  /** Peak learning rate after warmup. */
  lr: number;
  epochs: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step: batchSize x gradAccum sequences per step. */
  gradAccum: number;
  /** Linear warmup from 0 over this many optimizer steps (capped to the run's length). */
  warmupSteps: number;
  /** Decay after warmup (Trainer default: linear to 0). */
  schedule: LrSchedule;
  /** Decoupled AdamW weight decay (Trainer default 0). */
  weightDecay: number;
  /** Global gradient-norm clip (Trainer default 1). */
  maxGradNorm: number;
  /** Tokens per example; longer rows are truncated and counted. */
  maxLength: number;
  /** Concatenate short examples into full rows. */
  packing: boolean;
  /** Share of the training rows held out for evaluation when no eval file is given. */
  evalFraction: number;
  /** Evaluate every N optimizer steps (0: only before and after). */
  evalEvery: number;
  /** Save a checkpoint every N optimizer steps (0: only at the end). */
  checkpointEvery: number;
  /** Seeds data order, dropout and the adapter initialisation. */
  seed: number;
  /**
   * Keep only each layer's input and recompute its activations in backward: the same gradients,
   * far less memory, about a third more compute.
   */
  recompute: RecomputeMode;
  /** GPU memory the run may plan for, in bytes, for `recompute: 'auto'`; null: the device's budget (src/app/memory.ts). */
  memoryBudget: number | null;
}

/**
 * Optimizer steps whose loss may still be in flight when the next step is recorded. One lets the
 * CPU record step s + 1 while the GPU runs step s, with no readback wait in between; progress
 * reports (with the exact per-step loss) arrive one step late. Evaluation, checkpoints, pauses
 * and the end of the run wait for every pending loss first.
 */
export const LOSS_LAG = 1;

export class SettingsError extends Error {
  override name = 'SettingsError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`Training setting "${field}": ${message}`);
  }
}

export const DEFAULT_TRAIN_SETTINGS: Omit<TrainSettings, 'lora'> = {
  lr: 2e-4,
  epochs: 3,
  batchSize: 4,
  gradAccum: 1,
  warmupSteps: 0,
  schedule: 'linear',
  weightDecay: 0,
  maxGradNorm: 1,
  maxLength: 512,
  packing: false,
  evalFraction: 0.1,
  evalEvery: 0,
  checkpointEvery: 10,
  seed: 42,
  recompute: 'auto',
  memoryBudget: null,
};

export function validateTrainSettings(input: Partial<Omit<TrainSettings, 'lora'>> & { lora?: Partial<LoraConfig> }): TrainSettings {
  const s = { ...DEFAULT_TRAIN_SETTINGS, ...definedOnly(input), lora: validateLoraConfig(definedOnly(input.lora ?? {})) };
  const positive = (field: keyof TrainSettings, value: number, integer = false) => {
    if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
      throw new SettingsError(field, `must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
    }
  };
  const nonNegative = (field: keyof TrainSettings, value: number, integer = false) => {
    if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
      throw new SettingsError(field, `must be a ${integer ? 'whole number' : 'number'} >= 0, got ${value}`);
    }
  };
  positive('lr', s.lr);
  positive('epochs', s.epochs, true);
  positive('batchSize', s.batchSize, true);
  positive('gradAccum', s.gradAccum, true);
  positive('maxLength', s.maxLength, true);
  nonNegative('warmupSteps', s.warmupSteps, true);
  nonNegative('weightDecay', s.weightDecay);
  nonNegative('maxGradNorm', s.maxGradNorm);
  nonNegative('evalEvery', s.evalEvery, true);
  nonNegative('checkpointEvery', s.checkpointEvery, true);
  nonNegative('seed', s.seed, true);
  if (!(s.evalFraction >= 0 && s.evalFraction < 1)) throw new SettingsError('evalFraction', `must be in [0, 1), got ${s.evalFraction}`);
  if (!RECOMPUTE_MODES.includes(s.recompute)) throw new SettingsError('recompute', `must be auto, on or off, got "${s.recompute}"`);
  if (s.memoryBudget !== null) positive('memoryBudget', s.memoryBudget, true);
  if (!['cosine', 'linear', 'constant'].includes(s.schedule)) {
    throw new SettingsError('schedule', `must be cosine, linear or constant, got "${s.schedule}"`);
  }
  return s;
}

/** Learning rate for optimizer step `step` (0-based), as transformers' schedules with warmup. */
/** Optimizer steps of a run: every epoch ends with a step, even on fewer than gradAccum micro-batches. */
export function optimizerSteps(trainExamples: number, settings: Pick<TrainSettings, 'batchSize' | 'gradAccum' | 'epochs'>): number {
  return settings.epochs * Math.ceil(Math.ceil(trainExamples / settings.batchSize) / settings.gradAccum);
}

export function learningRate(settings: Pick<TrainSettings, 'lr' | 'warmupSteps' | 'schedule'>, step: number, totalSteps: number): number {
  const warmup = Math.min(settings.warmupSteps, totalSteps);
  if (step < warmup) return (settings.lr * step) / Math.max(1, warmup);
  if (settings.schedule === 'constant') return settings.lr;
  const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
  if (settings.schedule === 'linear') return settings.lr * Math.max(0, 1 - progress);
  return settings.lr * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress)));
}

/** Unset options (undefined) fall back to the defaults instead of overriding them. */
function definedOnly<T extends object>(input: T): T {
  return Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined)) as T;
}

/**
 * The one way an adapter gets trained, shared by the page's runs, the CLI's `train` and each phase
 * of progressive training: measure the eval loss before (unless resuming), train, measure it after
 * (unless the trainer's last step just did), and hand the weights to `save` unless the run paused.
 */
import type { HostTensor } from '../lora/adapter';
import type { LoraTrainer, TrainCheckpoint, TrainerHooks, TrainResult } from './trainer';

export type RunStage = 'eval-before' | 'training' | 'eval-after';

export interface TrainingRunOptions {
  hooks?: TrainerHooks;
  /** Continue from this checkpoint; the eval loss before training was measured when the run began. */
  resume?: TrainCheckpoint;
  /** Called as each stage begins. */
  onStage?(stage: RunStage): void;
  /** Called with the eval loss before training as soon as it is known (not when resuming). */
  onEvalBefore?(loss: number | null): Promise<void> | void;
  /** Receives the weights of a completed or stopped run; a paused run keeps them in its checkpoint. */
  save?(tensors: Map<string, HostTensor>, outcome: TrainingRunOutcome): Promise<void>;
}

export interface TrainingRunOutcome {
  result: TrainResult;
  /** Mean token loss on the eval examples before training; null when resumed or without eval data. */
  evalLossBefore: number | null;
  /** The same after training; null when paused or without eval data. */
  evalLossAfter: number | null;
}

export async function trainAdapter(trainer: LoraTrainer, opts: TrainingRunOptions = {}): Promise<TrainingRunOutcome> {
  let evalLossBefore: number | null = null;
  if (!opts.resume) {
    opts.onStage?.('eval-before');
    evalLossBefore = await trainer.evalLoss();
    await opts.onEvalBefore?.(evalLossBefore);
  }
  opts.onStage?.('training');
  const result = await trainer.run(opts.hooks, opts.resume);
  if (result.status === 'paused') return { result, evalLossBefore, evalLossAfter: null };
  opts.onStage?.('eval-after');
  // The trainer evaluates after its last step; a stopped run, or one resumed at its very end, has no fresh figure.
  const fresh = result.status === 'completed' && result.evalLoss !== null;
  const outcome = { result, evalLossBefore, evalLossAfter: fresh ? result.evalLoss : await trainer.evalLoss() };
  if (opts.save) await opts.save(await trainer.adapter.readTensors(), outcome);
  return outcome;
}

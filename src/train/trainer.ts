import { deviceMemory, recomputeFor } from '../app/memory';
import type { Gpu } from '../gpu/context';
import type { Example } from '../data/prepare';
import { batchExamples } from '../data/prepare';
import { shuffledIndices } from '../util/random';
import type { LoraAdapter, LoraWeights } from '../lora/adapter';
import type { LlamaModel } from '../model/llama';
import { type Batch, makeBatch } from './batch';
import { AdamW, adamwSettings } from './optimizer';
import { LOSS_LAG, learningRate, optimizerSteps, type TrainSettings } from './settings';

export interface TrainProgress {
  step: number;
  totalSteps: number;
  epoch: number;
  /** Mean token loss of the latest optimizer step. */
  loss: number;
  /** Set on the steps where evaluation ran. */
  evalLoss?: number;
  lr: number;
  tokensPerSecond: number;
  elapsedMs: number;
  etaMs: number;
}

/** Everything needed to continue a run exactly where it stopped. */
export interface TrainCheckpoint {
  /** Optimizer steps done. */
  step: number;
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** Where in the data the next step starts. */
  cursor: { epoch: number; batchIndex: number };
  elapsedMs: number;
  trainLossFirst: number | null;
}

export type TrainControl = 'continue' | 'pause' | 'stop';

export interface TrainerHooks {
  onProgress?(progress: TrainProgress): void;
  onCheckpoint?(checkpoint: TrainCheckpoint): Promise<void>;
  /** Polled between optimizer steps. */
  control?(): TrainControl;
}

export interface TrainResult {
  status: 'completed' | 'paused' | 'stopped';
  steps: number;
  totalSteps: number;
  trainLossFirst: number | null;
  trainLossLast: number | null;
  evalLoss: number | null;
  tokensPerSecond: number;
  elapsedMs: number;
}

/** A recorded optimizer step whose progress report waits for its loss. */
interface PendingStep {
  step: number;
  epoch: number;
  lr: number;
  /** Tokens trained up to and including this step. */
  tokens: number;
  targetCount: number;
  lossSum: Promise<number>;
  evalLoss?: number;
}

/**
 * The LoRA training loop: epochs of shuffled micro-batches, gradient accumulation with the loss
 * normalised by the target count of the whole optimizer step (as transformers does), warmup and
 * decay, AdamW with clipping, evaluation and checkpoints at fixed step intervals.
 */
export class LoraTrainer {
  readonly optimizer: AdamW;
  readonly totalSteps: number;
  /** Each step recomputes activations in backward: `settings.recompute`, with 'auto' decided against the memory budget. */
  readonly recompute: boolean;
  private epochCache: { epoch: number; batches: Batch[] } | null = null;

  constructor(
    private readonly gpu: Gpu,
    private readonly model: LlamaModel,
    readonly adapter: LoraAdapter,
    readonly settings: TrainSettings,
    private readonly data: { train: Example[]; eval: Example[] },
    private readonly padId: number,
  ) {
    if (data.train.length === 0) throw new Error('No training examples: the dataset is empty after preparation.');
    this.optimizer = new AdamW(gpu, adapter);
    this.totalSteps = optimizerSteps(data.train.length, settings);
    this.recompute = recomputeFor(model.config, settings, deviceMemory(gpu), { bytes: model.weights.bytes });
  }

  /** Frees the optimizer's buffers; the adapter belongs to whoever created it. */
  destroy(): void {
    this.optimizer.destroy();
  }

  /** Mean token loss over `examples` (default: the run's eval examples) with `adapter` (default: as trained so far). */
  async evalLoss(adapter: LoraWeights | null = this.adapter, examples: readonly Example[] = this.data.eval): Promise<number | null> {
    if (examples.length === 0) return null;
    let sum = 0;
    let count = 0;
    for (const padded of batchExamples(examples, this.settings.batchSize, this.padId)) {
      const batch = makeBatch(padded.inputIds, padded.labels);
      if (batch.targetCount === 0) continue;
      this.model.loss(batch, adapter);
      sum += await this.model.readLossSum(batch);
      count += batch.targetCount;
    }
    return count ? sum / count : null;
  }

  async restore(checkpoint: TrainCheckpoint): Promise<void> {
    this.gpu.write(this.adapter.params, checkpoint.params);
    this.gpu.write(this.adapter.m, checkpoint.m);
    this.gpu.write(this.adapter.v, checkpoint.v);
    this.adapter.zeroGrads();
    this.optimizer.step = checkpoint.step;
  }

  async checkpoint(cursor: TrainCheckpoint['cursor'], elapsedMs: number, trainLossFirst: number | null): Promise<TrainCheckpoint> {
    const n = this.adapter.layout.totalFloats;
    return {
      step: this.optimizer.step,
      params: await this.gpu.readF32(this.adapter.params, n),
      m: await this.gpu.readF32(this.adapter.m, n),
      v: await this.gpu.readF32(this.adapter.v, n),
      cursor,
      elapsedMs,
      trainLossFirst,
    };
  }

  async run(hooks: TrainerHooks = {}, resume?: TrainCheckpoint): Promise<TrainResult> {
    const s = this.settings;
    if (resume) await this.restore(resume);
    let epoch = resume?.cursor.epoch ?? 0;
    let batchIndex = resume?.cursor.batchIndex ?? 0;
    let trainLossFirst = resume?.trainLossFirst ?? null;
    let trainLossLast: number | null = null;
    let evalLoss: number | null = null;
    let tokens = 0;
    const started = performance.now();
    const elapsedBefore = resume?.elapsedMs ?? 0;
    const elapsed = () => elapsedBefore + performance.now() - started;
    let lastCheckpointStep = resume?.step ?? -1;

    const saveCheckpoint = async () => {
      if (!hooks.onCheckpoint || lastCheckpointStep === this.optimizer.step) return;
      lastCheckpointStep = this.optimizer.step;
      await hooks.onCheckpoint(await this.checkpoint({ epoch, batchIndex }, elapsed(), trainLossFirst));
    };

    // Steps whose loss is still being read back, oldest first (see LOSS_LAG).
    const pending: PendingStep[] = [];
    const deliver = async (keep: number) => {
      while (pending.length > keep) {
        const p = pending.shift()!;
        const loss = p.targetCount ? (await p.lossSum) / p.targetCount : 0;
        trainLossFirst ??= loss;
        trainLossLast = loss;
        const now = performance.now();
        const progress: TrainProgress = {
          step: p.step,
          totalSteps: this.totalSteps,
          epoch: p.epoch,
          loss,
          lr: p.lr,
          tokensPerSecond: p.tokens / Math.max(1e-9, (now - started) / 1000),
          elapsedMs: elapsedBefore + now - started,
          etaMs: ((now - started) / Math.max(1, p.step - (resume?.step ?? 0))) * (this.totalSteps - p.step),
        };
        if (p.evalLoss !== undefined) progress.evalLoss = p.evalLoss;
        hooks.onProgress?.(progress);
      }
    };

    while (epoch < s.epochs) {
      const control = hooks.control?.() ?? 'continue';
      if (control !== 'continue') {
        await deliver(0);
        await saveCheckpoint();
        return this.result(control === 'pause' ? 'paused' : 'stopped', trainLossFirst, trainLossLast, evalLoss, tokens, elapsed());
      }
      const batches = this.epochBatches(epoch);
      const stepBatches = batches.slice(batchIndex, batchIndex + s.gradAccum);
      const targetCount = stepBatches.reduce((sum, b) => sum + b.targetCount, 0);
      const lossParts: Promise<number>[] = [];
      for (const batch of stepBatches) {
        if (batch.targetCount === 0) continue;
        this.model.lossAndGradients(batch, this.adapter, {
          lossScale: 1 / targetCount,
          dropoutSeed: s.seed * 1_000_003 + this.optimizer.step * 131 + batchIndex,
          recompute: this.recompute,
        });
        // Submitted now, awaited in `deliver`: the GPU never waits for the CPU to read a loss.
        lossParts.push(this.model.readLossSum(batch));
        tokens += countTokens(batch);
      }
      const lr = learningRate(s, this.optimizer.step, this.totalSteps);
      this.optimizer.apply(adamwSettings(s), lr);
      // The whole step goes to the GPU before the CPU waits for the previous step's loss.
      this.gpu.flush();
      batchIndex += s.gradAccum;
      if (batchIndex >= batches.length) {
        epoch++;
        batchIndex = 0;
      }
      const step = this.optimizer.step;
      const lossSum = Promise.all(lossParts).then((sums) => sums.reduce((a, b) => a + b, 0));
      // Awaited in `deliver` unless an error ends the run first; then that error is the one to report.
      lossSum.catch(() => undefined);
      const stepEpoch = epoch + batchIndex / Math.max(1, batches.length);
      pending.push({ step, epoch: stepEpoch, lr, tokens, targetCount, lossSum });
      const done = step >= this.totalSteps;
      const evaluate = (s.evalEvery > 0 && step % s.evalEvery === 0) || done;
      const checkpointNow = s.checkpointEvery > 0 && step % s.checkpointEvery === 0;
      if (evaluate) {
        // Earlier steps are reported first; this step's report carries the eval loss.
        await deliver(1);
        evalLoss = await this.evalLoss();
        if (evalLoss !== null) pending[0].evalLoss = evalLoss;
      }
      await deliver(evaluate || checkpointNow ? 0 : LOSS_LAG);
      if (checkpointNow) await saveCheckpoint();
    }
    await deliver(0);
    await saveCheckpoint();
    return this.result('completed', trainLossFirst, trainLossLast, evalLoss, tokens, elapsed());
  }

  /** The micro-batches of one epoch, in an order fixed by (seed, epoch) so a resumed run sees the same data. */
  private epochBatches(epoch: number): Batch[] {
    if (this.epochCache?.epoch === epoch) return this.epochCache.batches;
    const order = shuffledIndices(this.data.train.length, this.settings.seed * 7919 + epoch);
    const batches = batchExamples(
      order.map((i) => this.data.train[i]),
      this.settings.batchSize,
      this.padId,
    ).map((padded) => makeBatch(padded.inputIds, padded.labels));
    this.epochCache = { epoch, batches };
    return batches;
  }

  private result(
    status: TrainResult['status'],
    trainLossFirst: number | null,
    trainLossLast: number | null,
    evalLoss: number | null,
    tokens: number,
    elapsedMs: number,
  ): TrainResult {
    return {
      status,
      steps: this.optimizer.step,
      totalSteps: this.totalSteps,
      trainLossFirst,
      trainLossLast,
      evalLoss,
      tokensPerSecond: tokens / Math.max(1e-9, elapsedMs / 1000),
      elapsedMs,
    };
  }
}

/** Tokens that carry information: a row's length up to its last target (right padding excluded). */
function countTokens(batch: Batch): number {
  let tokens = 0;
  for (let b = 0; b < batch.B; b++) {
    let last = 0;
    for (let t = 0; t < batch.T; t++) if (batch.targets[b * batch.T + t] !== -100) last = t + 2;
    tokens += Math.min(last, batch.T);
  }
  return tokens;
}

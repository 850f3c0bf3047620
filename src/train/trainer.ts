import type { Gpu } from '../gpu/context';
import type { Example } from '../data/prepare';
import { batchExamples } from '../data/prepare';
import { shuffledIndices } from '../util/random';
import type { LoraAdapter } from '../lora/adapter';
import type { LlamaModel } from '../model/llama';
import { type Batch, makeBatch } from './batch';
import { AdamW } from './optimizer';
import { learningRate, type TrainSettings } from './settings';

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

/**
 * The LoRA training loop: epochs of shuffled micro-batches, gradient accumulation with the loss
 * normalised by the target count of the whole optimizer step (as transformers does), warmup and
 * decay, AdamW with clipping, evaluation and checkpoints at fixed step intervals.
 */
export class LoraTrainer {
  readonly optimizer: AdamW;
  readonly totalSteps: number;
  private readonly microBatchesPerEpoch: number;
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
    this.microBatchesPerEpoch = Math.ceil(data.train.length / settings.batchSize);
    this.totalSteps = settings.epochs * Math.ceil(this.microBatchesPerEpoch / settings.gradAccum);
  }

  /** Mean token loss over the eval examples with the adapter as it is now. */
  async evalLoss(adapter: LoraAdapter | null = this.adapter): Promise<number | null> {
    if (this.data.eval.length === 0) return null;
    let sum = 0;
    let count = 0;
    for (const padded of batchExamples(this.data.eval, this.settings.batchSize, this.padId)) {
      const batch = makeBatch(padded.inputIds, padded.labels);
      if (batch.targetCount === 0) continue;
      this.model.lossAndGradients(batch, adapter);
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

    while (epoch < s.epochs) {
      const control = hooks.control?.() ?? 'continue';
      if (control !== 'continue') {
        await saveCheckpoint();
        return this.result(control === 'pause' ? 'paused' : 'stopped', trainLossFirst, trainLossLast, evalLoss, tokens, elapsed());
      }
      const batches = this.epochBatches(epoch);
      const stepBatches = batches.slice(batchIndex, batchIndex + s.gradAccum);
      const targetCount = stepBatches.reduce((sum, b) => sum + b.targetCount, 0);
      let lossSum = 0;
      for (const batch of stepBatches) {
        if (batch.targetCount === 0) continue;
        this.model.lossAndGradients(batch, this.adapter, {
          lossScale: 1 / targetCount,
          dropoutSeed: s.seed * 1_000_003 + this.optimizer.step * 131 + batchIndex,
        });
        lossSum += await this.model.readLossSum(batch);
        tokens += countTokens(batch);
      }
      const lr = learningRate(s, this.optimizer.step, this.totalSteps);
      this.optimizer.apply(
        { lr: s.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: s.weightDecay, maxGradNorm: s.maxGradNorm },
        lr,
      );
      const loss = targetCount ? lossSum / targetCount : 0;
      trainLossFirst ??= loss;
      trainLossLast = loss;
      batchIndex += s.gradAccum;
      if (batchIndex >= batches.length) {
        epoch++;
        batchIndex = 0;
      }
      const step = this.optimizer.step;
      const done = step >= this.totalSteps;
      const progress: TrainProgress = {
        step,
        totalSteps: this.totalSteps,
        epoch: epoch + batchIndex / Math.max(1, batches.length),
        loss,
        lr,
        tokensPerSecond: tokens / Math.max(1e-9, (performance.now() - started) / 1000),
        elapsedMs: elapsed(),
        etaMs: ((performance.now() - started) / Math.max(1, step - (resume?.step ?? 0))) * (this.totalSteps - step),
      };
      if ((s.evalEvery > 0 && step % s.evalEvery === 0) || done) {
        evalLoss = await this.evalLoss();
        if (evalLoss !== null) progress.evalLoss = evalLoss;
      }
      hooks.onProgress?.(progress);
      if (s.checkpointEvery > 0 && step % s.checkpointEvery === 0) await saveCheckpoint();
    }
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

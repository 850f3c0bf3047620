/**
 * What every kind of run does around its training: the run record, its history and checkpoints in
 * IndexedDB, the events the page sees, the adapter saved at the end, and the device-loss guard.
 * One `RunRecorder` serves one start or resume of one run (src/app/runs.ts).
 */
import type { DatasetRecord, HistoryPoint, RunRecord, WebtuneDb } from '../storage/db';
import { newId } from '../storage/db';
import { StorageFullError } from '../storage/errors';
import { armedAt, TEST_HOOKS } from '../testing/hooks';
import type { RunStage } from '../train/run';
import type { TrainSettings } from '../train/settings';
import type { TrainControl, TrainerHooks } from '../train/trainer';
import type { AdapterLibrary } from './adapters';
import type { RunEvent, RunOutcome } from './api';
import type { DeviceSession } from './device';
import { HistoryWriter } from './history-writer';
import type { LoadedModel } from './models';
import { RunAnnouncer } from './run-presence';

export type OnEvent = (event: RunEvent) => void;

const STAGE_MESSAGES: Record<RunStage, string> = {
  'eval-before': 'Measuring the eval loss before training…',
  training: 'Training…',
  'eval-after': 'Measuring the eval loss after training…',
};

/** The figures a finished run (or phase) reports and stores with its adapter. */
export interface RunFigures {
  trainLossLast: number | null;
  evalLossAfter: number | null;
}

export interface RunRecorderDeps {
  db: WebtuneDb;
  device: DeviceSession;
  adapters: AdapterLibrary;
  control: () => TrainControl;
  /** Minimum time between two writes of training history. */
  historyFlushMs: number;
}

export class RunRecorder {
  readonly db: WebtuneDb;
  readonly history: HistoryWriter;
  private readonly adapters: AdapterLibrary;
  private readonly control: () => TrainControl;
  /** Tells other tabs how the run goes (run-presence.ts). */
  readonly #announcer = new RunAnnouncer();

  constructor(
    private readonly deps: RunRecorderDeps,
    readonly run: RunRecord,
    readonly datasetName: string,
    readonly onEvent: OnEvent,
  ) {
    this.db = deps.db;
    this.adapters = deps.adapters;
    this.control = deps.control;
    this.history = new HistoryWriter(deps.db, run.id, deps.historyFlushMs);
  }

  /**
   * Runs a run's GPU work. A lost device, or storage too full for a checkpoint, pauses the run
   * with the reason and keeps its checkpoints (a resume continues from the last one that was
   * written); other errors fail it. `exists` says whether the run record was written yet
   * (progressive runs write it once their data is tokenized); `extra` adds to the outcome of a
   * paused run.
   */
  async guard(
    body: () => Promise<RunOutcome>,
    extra: () => Partial<RunOutcome> = () => ({}),
    exists: () => boolean = () => true,
  ): Promise<RunOutcome> {
    const { db, run, history } = this;
    let status = 'failed';
    try {
      const outcome = await body();
      status = outcome.status;
      return outcome;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!exists()) throw error;
      await history.flush().catch(() => undefined);
      const pauseReason =
        error instanceof StorageFullError ? 'storage-full' : (await this.deps.device.isLoss(error)) ? 'device-lost' : null;
      if (pauseReason) {
        status = 'paused';
        // With storage full even this small write may fail; the record then says "running", which resumes the same way.
        const paused = await db.updateRun(run.id, { status: 'paused', error: message }).catch(() => db.getRun(run.id));
        return {
          runId: run.id,
          status: 'paused',
          step: paused.lastCheckpointStep ?? 0,
          totalSteps: paused.totalSteps,
          finalTrainLoss: null,
          finalEvalLoss: null,
          adapterId: null,
          error: message,
          pauseReason,
          ...extra(),
        };
      }
      await db.updateRun(run.id, { status: 'failed', error: message }).catch(() => undefined);
      throw error;
    } finally {
      await history.flush().catch(() => undefined);
      this.#announcer.post({ type: 'ended', runId: run.id, status });
      this.#announcer.close();
    }
  }

  trainerHooks(phase: number, offset: number): TrainerHooks {
    const { run, db, history, onEvent } = this;
    const progressive = run.kind === 'progressive';
    return {
      onProgress: (p) => {
        history.add({
          step: offset + p.step,
          ...(progressive ? { phase } : {}),
          epoch: p.epoch,
          loss: p.loss,
          evalLoss: p.evalLoss,
          lr: p.lr,
          tokensPerSecond: p.tokensPerSecond,
          elapsedMs: p.elapsedMs,
        });
        // Steps count over the whole run, as in its history and checkpoints.
        const progress = progressive ? { ...p, step: offset + p.step, totalSteps: run.totalSteps } : p;
        onEvent({ type: 'progress', runId: run.id, phase, progress });
        const { step, totalSteps, loss, elapsedMs } = progress;
        this.#announcer.post({ type: 'progress', runId: run.id, step, totalSteps, loss, elapsedMs });
        if (TEST_HOOKS && armedAt('train:progress', step) === 'lose-device')
          void this.deps.device.gpu().then((gpu) => gpu.device.destroy());
      },
      onCheckpoint: async (c) => {
        // With the disk full the checkpoint fails too and pauses the run, naming it; a smaller history write may fail first.
        await history.flush().catch((error: unknown) => {
          if (!(error instanceof StorageFullError)) throw error;
        });
        const step = offset + c.step;
        await db.saveCheckpoint({
          runId: run.id,
          step,
          createdAt: Date.now(),
          params: c.params,
          m: c.m,
          v: c.v,
          optimizerStep: c.step,
          ...(progressive ? { phase } : {}),
          // The trainer derives each epoch's order from (seed, epoch), so none needs storing.
          dataCursor: { ...c.cursor, order: [] },
          rngSeed: Number(run.settings.training.seed ?? 0),
        });
        await db.updateRun(run.id, { step });
        onEvent({ type: 'checkpoint', runId: run.id, step });
        this.#announcer.post({ type: 'checkpoint', runId: run.id, step });
      },
      control: this.control,
    };
  }

  /** The stage's message, then `started` as training begins: what the page says on `started` (a resume's checkpoint) stays on show. */
  stage(phase: number, stage: RunStage): void {
    this.onEvent({ type: 'phase', runId: this.run.id, phase, stage, message: STAGE_MESSAGES[stage] });
    if (stage === 'training') this.onEvent({ type: 'started', run: this.run });
  }

  /** The eval loss before training is the first point of the phase's history, and kept for a resume. */
  async recordEvalBefore(phase: number, loss: number | null): Promise<void> {
    const { run, db } = this;
    if (run.phases) {
      run.phases[phase - 1].evalLossBefore = loss;
      await db.updateRun(run.id, { phases: run.phases });
    }
    if (loss === null) return;
    const step = phase === 2 ? run.phases![0].steps : 0;
    const point: HistoryPoint = { step, ...(run.kind === 'progressive' ? { phase } : {}), epoch: 0, evalLoss: loss, lr: 0, elapsedMs: 0 };
    run.history.push(point);
    await db.appendHistory(run.id, [point]);
  }

  async saveAdapter(
    tensors: Map<string, { shape: number[]; data: Float32Array }>,
    nameSuffix: string,
    figures: RunFigures,
  ): Promise<string> {
    const { run } = this;
    const id = newId('adapter');
    await this.adapters.save({
      id,
      name: `${run.name}${nameSuffix}`,
      createdAt: Date.now(),
      runId: run.id,
      baseModel: run.model.id,
      datasetName: this.datasetName,
      settings: run.settings,
      finalTrainLoss: finalTrainLoss(run, figures.trainLossLast),
      finalEvalLoss: figures.evalLossAfter,
      config: run.settings.lora,
      tensors: [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
    });
    return id;
  }

  async finish(
    status: 'completed' | 'paused' | 'stopped',
    steps: number,
    figures: RunFigures,
    adapterId: string | null,
  ): Promise<RunOutcome> {
    const { run, db, history } = this;
    await history.flush();
    const updated = await db.updateRun(run.id, { status, step: steps, error: null });
    return {
      runId: run.id,
      status,
      step: steps,
      totalSteps: updated.totalSteps,
      finalTrainLoss: finalTrainLoss(updated, figures.trainLossLast),
      finalEvalLoss: figures.evalLossAfter,
      adapterId,
      error: null,
    };
  }
}

function finalTrainLoss(run: RunRecord, last: number | null): number | null {
  return last ?? run.history.filter((p) => p.loss !== undefined).at(-1)?.loss ?? null;
}

/** A new run record, before its steps are planned. */
export function newRun(
  id: string,
  model: LoadedModel,
  dataset: DatasetRecord,
  settings: TrainSettings,
  opts: { kind: 'single' | 'progressive'; name?: string; evalDatasetId: string | null; filter: RunRecord['filter'] },
): RunRecord {
  const { lora, ...training } = settings;
  const now = Date.now();
  return {
    id,
    createdAt: now,
    updatedAt: now,
    name: opts.name?.trim() || `${model.info.name.split('/').pop()} · ${dataset.name}`,
    model: {
      id: model.info.name,
      source: model.info.source,
      architecture: model.info.architecture,
      parameterCount: model.info.parameterCount,
    },
    datasetId: dataset.id,
    evalDatasetId: opts.evalDatasetId,
    settings: { lora, training },
    status: 'running',
    error: null,
    totalSteps: 0,
    step: 0,
    history: [],
    lastCheckpointStep: null,
    filter: opts.filter,
    kind: opts.kind,
  };
}

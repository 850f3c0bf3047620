/**
 * Training runs of every kind (one phase, or progressive: two), each with a run record, its
 * checkpoints and history in IndexedDB, pause/stop/resume, and the same device-loss guard: a lost
 * GPU pauses the run with the reason, and `resume` continues it on a new device from its latest
 * checkpoint. The training itself is the one run path of src/train (trainAdapter, runProgressive).
 */
import type { DatasetRow } from '../data/types';
import type { AdapterTensors } from '../export/adapter';
import type { DatasetRecord, HistoryPoint, RunRecord, WebtuneDb } from '../storage/db';
import { newId } from '../storage/db';
import { padTokenId, prepareRunData } from '../train/pipeline';
import { type ProgressiveResult, type ProgressiveResume, runProgressive, startingAdapter } from '../train/progressive';
import { trainAdapter, type RunStage, type TrainingRunOutcome } from '../train/run';
import { type TrainSettings, validateTrainSettings } from '../train/settings';
import { LoraTrainer, type TrainCheckpoint, type TrainerHooks } from '../train/trainer';
import { adapterTensors, type AdapterLibrary } from './adapters';
import type { ProgressiveOutcome, ProgressiveRunRequest, RunEvent, RunOutcome, RunRequest } from './api';
import type { DeviceSession } from './device';
import { EngineStateError } from './errors';
import { HistoryWriter } from './history-writer';
import { deviceMemory, estimateTrainingMemory } from './memory';
import type { LoadedModel, ModelSession } from './models';
import { phaseSummary, progressivePhases } from './progressive-run';
import { filteredRows } from './quality-filter';
import type { TaskGuard } from './tasks';

type OnEvent = (event: RunEvent) => void;

const STAGE_MESSAGES: Record<RunStage, string> = {
  'eval-before': 'Measuring the eval loss before training…',
  training: 'Training…',
  'eval-after': 'Measuring the eval loss after training…',
};

export interface RunServiceDeps {
  storage: () => Promise<WebtuneDb>;
  device: DeviceSession;
  models: ModelSession;
  adapters: AdapterLibrary;
  tasks: TaskGuard;
  /** Minimum time between two writes of training history. */
  historyFlushMs: number;
}

/** What every kind of run does with the trainer's callbacks: history, checkpoints and events. */
interface RunContext {
  run: RunRecord;
  db: WebtuneDb;
  history: HistoryWriter;
  datasetName: string;
  onEvent: OnEvent;
}

export class RunService {
  constructor(private readonly deps: RunServiceDeps) {}

  async list(): Promise<RunRecord[]> {
    return (await this.deps.storage()).listRuns();
  }

  async start(request: RunRequest, onEvent: OnEvent = () => {}): Promise<RunOutcome> {
    const model = this.deps.models.current();
    const init = request.initAdapterId ? await this.deps.adapters.recordFor(request.initAdapterId, model) : null;
    const settings = validateTrainSettings(
      init
        ? { ...request.settings, lora: { ...init.config, dropout: request.settings.lora?.dropout ?? init.config.dropout } }
        : request.settings,
    );
    await this.#checkMemory(model, settings);
    const db = await this.deps.storage();
    const dataset = await db.getDataset(request.datasetId);
    const evalDataset = request.evalDatasetId ? await db.getDataset(request.evalDatasetId) : null;
    const filter = request.filter ?? null;
    const run = newRun(model, dataset, settings, { kind: 'single', name: request.name, evalDatasetId: evalDataset?.id ?? null, filter });
    onEvent({ type: 'phase', runId: run.id, phase: 1, message: 'Tokenizing the data…' });
    const rows = filteredRows(dataset.rows, filter, dataset.name);
    const start = init ? { tensors: adapterTensors(init), source: `the adapter "${init.name}"` } : null;
    const trainer = await this.#trainer(model, settings, rows, evalDataset?.rows ?? null, start, run.id, onEvent);
    run.totalSteps = trainer.totalSteps;
    try {
      await db.createRun(run);
    } catch (error) {
      trainer.destroy();
      trainer.adapter.destroy();
      throw error;
    }
    return this.#single(run, trainer, dataset.name, onEvent);
  }

  async resume(runId: string, onEvent: OnEvent = () => {}): Promise<RunOutcome> {
    const db = await this.deps.storage();
    const run = await db.getRun(runId);
    if (run.status !== 'running' && run.status !== 'paused') {
      throw new EngineStateError(`The run "${run.name}" is ${run.status}; only paused or interrupted runs can be resumed.`);
    }
    const checkpoint = await db.latestCheckpoint(runId);
    if (!checkpoint) {
      throw new EngineStateError(
        `The run "${run.name}" stopped before its first checkpoint, so there is nothing to resume; start it again.`,
      );
    }
    const model = this.deps.models.current();
    if (model.info.name !== run.model.id || model.info.parameterCount !== run.model.parameterCount) {
      throw new EngineStateError(`The run "${run.name}" trains ${run.model.id}; load that model first (now loaded: ${model.info.name}).`);
    }
    const settings = validateTrainSettings({ ...(run.settings.training as Partial<TrainSettings>), lora: run.settings.lora });
    const dataset = await db.getDataset(run.datasetId);
    const rows = filteredRows(dataset.rows, run.filter ?? null, dataset.name);
    // Steps after the checkpoint are trained again, so their history goes.
    const history = run.history.filter((p) => p.step <= checkpoint.step);
    const resumed = await db.updateRun(runId, { status: 'running', error: null, history, step: checkpoint.step });
    const elapsedMs = history.filter((p) => p.step === checkpoint.step).at(-1)?.elapsedMs ?? 0;
    const phase = checkpoint.phase ?? 1;
    const offset = phase === 2 ? (run.phases?.[0].steps ?? 0) : 0;
    const resume: TrainCheckpoint = {
      step: checkpoint.step - offset,
      params: checkpoint.params,
      m: checkpoint.m,
      v: checkpoint.v,
      cursor: { epoch: checkpoint.dataCursor.epoch, batchIndex: checkpoint.dataCursor.batchIndex },
      elapsedMs,
      trainLossFirst: history.find((p) => p.loss !== undefined && (p.phase ?? 1) === phase)?.loss ?? null,
    };
    if (run.kind === 'progressive') {
      const phases = run.phases!;
      const progressive: ProgressiveResume =
        phase === 2
          ? { phase: 2, checkpoint: resume, evalLossBefore: phases[1].evalLossBefore ?? null, phase1: phases[0].outcome }
          : { phase: 1, checkpoint: resume, evalLossBefore: phases[0].evalLossBefore ?? null };
      return this.#progressive(resumed, settings, rows, dataset.name, onEvent, progressive);
    }
    const evalRows = run.evalDatasetId ? (await db.getDataset(run.evalDatasetId)).rows : null;
    const trainer = await this.#trainer(model, settings, rows, evalRows, null, runId, onEvent);
    return this.#single(resumed, trainer, dataset.name, onEvent, resume);
  }

  async startProgressive(request: ProgressiveRunRequest, onEvent: OnEvent = () => {}): Promise<ProgressiveOutcome> {
    const model = this.deps.models.current();
    const settings = validateTrainSettings(request.settings);
    await this.#checkMemory(model, settings);
    const db = await this.deps.storage();
    const dataset = await db.getDataset(request.datasetId);
    const filter = request.filter ?? null;
    const rows = filteredRows(dataset.rows, filter, dataset.name);
    const { phase1, phase2 } = progressivePhases(rows, dataset.name);
    const run = newRun(model, dataset, settings, {
      kind: 'progressive',
      name: request.name ? request.name : `${model.info.name.split('/').pop()} · ${dataset.name} (progressive)`,
      evalDatasetId: null,
      filter,
    });
    run.phases = [
      { phase: 1, tasks: phase1.tasks, rows: phase1.rows.length, steps: 0 },
      { phase: 2, tasks: phase2.tasks, rows: phase2.rows.length, steps: 0 },
    ];
    const outcome = await this.#progressive(run, settings, rows, dataset.name, onEvent);
    return outcome as ProgressiveOutcome;
  }

  /** A one-phase run through trainAdapter. */
  async #single(
    run: RunRecord,
    trainer: LoraTrainer,
    datasetName: string,
    onEvent: OnEvent,
    resume?: TrainCheckpoint,
  ): Promise<RunOutcome> {
    return this.#guarded(run, datasetName, onEvent, async (ctx) => {
      let adapterId: string | null = null;
      try {
        const outcome = await trainAdapter(trainer, {
          resume,
          hooks: this.#trainerHooks(ctx, 1, 0),
          onStage: (stage) => this.#stage(ctx, 1, stage),
          onEvalBefore: (loss) => this.#recordEvalBefore(ctx, 1, loss),
          save: async (tensors, o) => {
            adapterId = await this.#saveAdapter(
              ctx,
              tensors,
              o.result.status === 'stopped' ? ` (stopped at step ${o.result.steps})` : '',
              o,
            );
          },
        });
        return this.#finish(ctx, outcome.result.status, outcome.result.steps, outcome, adapterId);
      } finally {
        trainer.destroy();
        trainer.adapter.destroy();
      }
    });
  }

  /** A two-phase run through runProgressive; `resume` continues it in the phase its checkpoint belongs to. */
  async #progressive(
    run: RunRecord,
    settings: TrainSettings,
    rows: DatasetRow[],
    datasetName: string,
    onEvent: OnEvent,
    resume?: ProgressiveResume,
  ): Promise<RunOutcome> {
    const model = this.deps.models.current();
    const { phase1, phase2 } = progressivePhases(rows, datasetName);
    const llama = await this.deps.models.llama((message) => onEvent({ type: 'phase', runId: run.id, phase: 1, message }));
    const gpu = await this.deps.device.gpu();
    const db = await this.deps.storage();
    if (!resume) {
      onEvent({ type: 'phase', runId: run.id, phase: 1, message: 'Tokenizing the data…' });
    }
    let created = resume !== undefined;
    const phases = run.phases!;
    const offset = (phase: number) => (phase === 2 ? phases[0].steps : 0);
    let result: ProgressiveResult | null = null;
    const body = async (ctx: RunContext): Promise<RunOutcome> => {
      result = await runProgressive(gpu, llama, model.prep, {
        phase1: { rows: phase1.rows, evalRows: null, settings },
        phase2: { rows: phase2.rows, evalRows: null, settings },
        resume,
        hooks: {
          onPlan: async ([steps1, steps2]) => {
            if (created) return;
            phases[0].steps = steps1;
            phases[1].steps = steps2;
            run.totalSteps = steps1 + steps2;
            await db.createRun(run);
            created = true;
          },
          onPhase: (phase, stage) => this.#stage(ctx, phase, stage),
          onEvalBefore: (phase, loss) => this.#recordEvalBefore(ctx, phase, loss),
          onProgress: (phase, p) => this.#trainerHooks(ctx, phase, offset(phase)).onProgress!(p),
          onCheckpoint: (phase, c) => this.#trainerHooks(ctx, phase, offset(phase)).onCheckpoint!(c),
          onPhaseDone: async (phase, outcome) => {
            phases[phase - 1].outcome = outcome;
            await db.updateRun(run.id, { phases });
          },
          control: this.deps.tasks.control,
        },
      });
      const r: ProgressiveResult = result;
      try {
        const last = r.phase2 ?? r.phase1;
        phases[0].outcome = r.phase1;
        if (r.phase2) phases[1].outcome = r.phase2;
        const steps = (r.phase2 ? phases[0].steps : 0) + last.steps;
        let adapterId: string | null = null;
        if (r.status !== 'paused') {
          adapterId = await this.#saveAdapter(ctx, await r.adapter.readTensors(), r.status === 'stopped' ? ' (stopped)' : '', {
            result: { trainLossLast: last.trainLossLast },
            evalLossAfter: last.evalLossAfter,
          });
        }
        await db.updateRun(run.id, { phases, forgetting: r.forgetting });
        const outcome = await this.#finish(
          ctx,
          r.status,
          steps,
          { result: { trainLossLast: last.trainLossLast }, evalLossAfter: last.evalLossAfter },
          adapterId,
        );
        return { ...outcome, phases: phases.map(phaseSummary), forgetting: r.forgetting };
      } finally {
        r.adapter.destroy();
      }
    };
    return this.#guarded(
      run,
      datasetName,
      onEvent,
      body,
      () => ({ phases: phases.map(phaseSummary), forgetting: null }),
      () => created,
    );
  }

  /**
   * Runs a run's GPU work. A lost device pauses the run with the reason and keeps its checkpoints;
   * other errors fail it. `exists` says whether the run record was written yet (progressive runs
   * write it once their data is tokenized).
   */
  async #guarded(
    run: RunRecord,
    datasetName: string,
    onEvent: OnEvent,
    body: (ctx: RunContext) => Promise<RunOutcome>,
    extra: () => Partial<RunOutcome> = () => ({}),
    exists: () => boolean = () => true,
  ): Promise<RunOutcome> {
    const db = await this.deps.storage();
    const history = new HistoryWriter(db, run.id, this.deps.historyFlushMs);
    const ctx: RunContext = { run, db, history, datasetName, onEvent };
    try {
      return await body(ctx);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!exists()) throw error;
      await history.flush().catch(() => undefined);
      if (await this.deps.device.isLoss(error)) {
        const paused = await db.updateRun(run.id, { status: 'paused', error: message });
        return {
          runId: run.id,
          status: 'paused',
          step: paused.lastCheckpointStep ?? 0,
          totalSteps: paused.totalSteps,
          finalTrainLoss: null,
          finalEvalLoss: null,
          adapterId: null,
          error: message,
          ...extra(),
        };
      }
      await db.updateRun(run.id, { status: 'failed', error: message }).catch(() => undefined);
      throw error;
    } finally {
      await history.flush().catch(() => undefined);
    }
  }

  #trainerHooks(ctx: RunContext, phase: number, offset: number): TrainerHooks {
    const { run, db, history, onEvent } = ctx;
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
        onEvent({
          type: 'progress',
          runId: run.id,
          phase,
          progress: progressive ? { ...p, step: offset + p.step, totalSteps: run.totalSteps } : p,
        });
      },
      onCheckpoint: async (c) => {
        await history.flush();
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
      },
      control: this.deps.tasks.control,
    };
  }

  #stage(ctx: RunContext, phase: number, stage: RunStage): void {
    if (stage === 'training') ctx.onEvent({ type: 'started', run: ctx.run });
    ctx.onEvent({ type: 'phase', runId: ctx.run.id, phase, stage, message: STAGE_MESSAGES[stage] });
  }

  /** The eval loss before training is the first point of the phase's history, and kept for a resume. */
  async #recordEvalBefore(ctx: RunContext, phase: number, loss: number | null): Promise<void> {
    const { run, db } = ctx;
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

  async #saveAdapter(
    ctx: RunContext,
    tensors: Map<string, { shape: number[]; data: Float32Array }>,
    nameSuffix: string,
    outcome: Pick<TrainingRunOutcome, 'evalLossAfter'> & { result: Pick<TrainingRunOutcome['result'], 'trainLossLast'> },
  ): Promise<string> {
    const { run } = ctx;
    const id = newId('adapter');
    await this.deps.adapters.save({
      id,
      name: `${run.name}${nameSuffix}`,
      createdAt: Date.now(),
      runId: run.id,
      baseModel: run.model.id,
      datasetName: ctx.datasetName,
      settings: run.settings,
      finalTrainLoss: this.#finalTrainLoss(run, outcome.result.trainLossLast),
      finalEvalLoss: outcome.evalLossAfter,
      config: run.settings.lora,
      tensors: [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
    });
    return id;
  }

  async #finish(
    ctx: RunContext,
    status: 'completed' | 'paused' | 'stopped',
    steps: number,
    outcome: Pick<TrainingRunOutcome, 'evalLossAfter'> & { result: Pick<TrainingRunOutcome['result'], 'trainLossLast'> },
    adapterId: string | null,
  ): Promise<RunOutcome> {
    const { run, db, history } = ctx;
    await history.flush();
    const updated = await db.updateRun(run.id, { status, step: steps, error: null });
    return {
      runId: run.id,
      status,
      step: steps,
      totalSteps: updated.totalSteps,
      finalTrainLoss: this.#finalTrainLoss(updated, outcome.result.trainLossLast),
      finalEvalLoss: outcome.evalLossAfter,
      adapterId,
      error: null,
    };
  }

  #finalTrainLoss(run: RunRecord, last: number | null): number | null {
    return last ?? run.history.filter((p) => p.loss !== undefined).at(-1)?.loss ?? null;
  }

  async #checkMemory(model: LoadedModel, settings: TrainSettings): Promise<void> {
    const estimate = estimateTrainingMemory(model.opened.config, settings, deviceMemory(await this.deps.device.gpu()));
    if (!estimate.fits) throw new EngineStateError(estimate.problems.join(' '));
  }

  /** Tokenizes a one-phase run's data and builds its trainer; `start` is the adapter it continues (PEFT init otherwise). */
  async #trainer(
    model: LoadedModel,
    settings: TrainSettings,
    rows: readonly DatasetRow[],
    evalRows: readonly DatasetRow[] | null,
    start: { tensors: AdapterTensors; source: string } | null,
    runId: string,
    onEvent: OnEvent,
  ): Promise<LoraTrainer> {
    const data = prepareRunData(rows, evalRows, model.prep, settings);
    if (data.train.length === 0) {
      throw new EngineStateError(
        `No training examples are left after tokenizing (${data.droppedNoTargets} rows had nothing to learn within ${settings.maxLength} tokens).`,
      );
    }
    const llama = await this.deps.models.llama((message) => onEvent({ type: 'phase', runId, phase: 1, message }));
    const gpu = await this.deps.device.gpu();
    const adapter = startingAdapter(gpu, model.opened.config, settings.lora, settings.seed, start?.tensors ?? null, start?.source);
    return new LoraTrainer(gpu, llama, adapter, settings, data, padTokenId(model.prep));
  }
}

function newRun(
  model: LoadedModel,
  dataset: DatasetRecord,
  settings: TrainSettings,
  opts: { kind: 'single' | 'progressive'; name?: string; evalDatasetId: string | null; filter: RunRecord['filter'] },
): RunRecord {
  const { lora, ...training } = settings;
  const now = Date.now();
  return {
    id: newId('run'),
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

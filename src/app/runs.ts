/**
 * Training runs of every kind (one phase, or progressive: two), each with a run record, its
 * checkpoints and history in IndexedDB, pause/stop/resume, and the same device-loss guard: a lost
 * GPU pauses the run with the reason, and `resume` continues it on a new device from its latest
 * checkpoint. The training itself is the one run path of src/train (trainAdapter, runProgressive).
 */
import type { DatasetRow } from '../data/types';
import type { AdapterTensors } from '../export/adapter';
import { newId, type RunRecord, type WebtuneDb } from '../storage/db';
import { padTokenId, prepareRunData } from '../train/pipeline';
import { type ProgressiveResume, runProgressive, startingAdapter } from '../train/progressive';
import { trainAdapter } from '../train/run';
import { type TrainSettings, validateTrainSettings } from '../train/settings';
import { LoraTrainer, type TrainCheckpoint } from '../train/trainer';
import { adapterTensors, type AdapterLibrary } from './adapters';
import type { ProgressiveOutcome, ProgressiveRunRequest, RunOutcome, RunRequest } from './api';
import type { DeviceSession } from './device';
import { DamagedRecordError } from '../storage/errors';
import { EngineStateError } from './errors';
import { matrixFormatsOf } from '../model/gpu-weights';
import { deviceMemory, estimateTrainingMemory } from './memory';
import type { LoadedModel, ModelSession } from './models';
import { phaseSummary, progressivePhases } from './progressive-run';
import { newRun, type OnEvent, RunRecorder } from './run-recorder';
import { filteredRows } from './quality-filter';
import { lockRun } from './run-presence';
import type { TaskGuard } from './tasks';

export interface RunServiceDeps {
  storage: () => Promise<WebtuneDb>;
  device: DeviceSession;
  models: ModelSession;
  adapters: AdapterLibrary;
  tasks: TaskGuard;
  /** Minimum time between two writes of training history. */
  historyFlushMs: number;
}

export class RunService {
  constructor(private readonly deps: RunServiceDeps) {}

  async list(): Promise<RunRecord[]> {
    return (await this.deps.storage()).listRuns();
  }

  async start(request: RunRequest, onEvent: OnEvent = () => {}): Promise<RunOutcome> {
    const runId = newId('run');
    return this.#locked(runId, () => this.#start(runId, request, onEvent));
  }

  async resume(runId: string, onEvent: OnEvent = () => {}): Promise<RunOutcome> {
    return this.#locked(runId, () => this.#resume(runId, onEvent));
  }

  async startProgressive(request: ProgressiveRunRequest, onEvent: OnEvent = () => {}): Promise<ProgressiveOutcome> {
    const runId = newId('run');
    return this.#locked(runId, () => this.#startProgressive(runId, request, onEvent));
  }

  /**
   * Runs `body` holding the run's Web Lock, so no other tab trains the same run meanwhile (a new
   * run's id is fresh, so its lock is always free).
   */
  async #locked<T>(runId: string, body: () => Promise<T>): Promise<T> {
    const lock = await lockRun(runId);
    if (!lock) {
      const run = await (await this.deps.storage()).getRun(runId);
      throw new EngineStateError(
        `The run "${run.name}" is training in another tab of webtune; follow it there, or close that tab to resume it here.`,
      );
    }
    try {
      return await body();
    } finally {
      lock.release();
    }
  }

  async #start(runId: string, request: RunRequest, onEvent: OnEvent): Promise<RunOutcome> {
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
    const run = newRun(runId, model, dataset, settings, {
      kind: 'single',
      name: request.name,
      evalDatasetId: evalDataset?.id ?? null,
      filter,
    });
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

  async #resume(runId: string, onEvent: OnEvent): Promise<RunOutcome> {
    const db = await this.deps.storage();
    const run = await db.getRun(runId);
    if (run.status !== 'running' && run.status !== 'paused') {
      throw new EngineStateError(`The run "${run.name}" is ${run.status}; only paused or interrupted runs can be resumed.`);
    }
    // A checkpoint whose checksums fail is never trained from: the newest intact one is, and the page says which were skipped.
    const { checkpoint, damaged } = await db.latestIntactCheckpoint(runId);
    if (!checkpoint && damaged.length > 0) {
      const [newest] = damaged;
      throw new DamagedRecordError(
        newest.kind,
        newest.id,
        newest.record,
        newest.part,
        'No intact checkpoint of the run is left; start it again.',
        newest.problem,
      );
    }
    if (!checkpoint) {
      throw new EngineStateError(
        `The run "${run.name}" stopped before its first checkpoint, so there is nothing to resume; start it again.`,
      );
    }
    for (const error of damaged) {
      onEvent({
        type: 'warning',
        runId,
        message: `${error.what}, so it is not used: resuming from the checkpoint at step ${checkpoint.step}.`,
      });
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

  async #startProgressive(runId: string, request: ProgressiveRunRequest, onEvent: OnEvent): Promise<ProgressiveOutcome> {
    const model = this.deps.models.current();
    const settings = validateTrainSettings(request.settings);
    await this.#checkMemory(model, settings);
    const db = await this.deps.storage();
    const dataset = await db.getDataset(request.datasetId);
    const filter = request.filter ?? null;
    const rows = filteredRows(dataset.rows, filter, dataset.name);
    const { phase1, phase2 } = progressivePhases(rows, dataset.name);
    const run = newRun(runId, model, dataset, settings, {
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
  /** Records one start or resume of `run`, with the same guard for every kind. */
  async #recorder(run: RunRecord, datasetName: string, onEvent: OnEvent): Promise<RunRecorder> {
    const { device, adapters, tasks, historyFlushMs } = this.deps;
    const deps = { db: await this.deps.storage(), device, adapters, control: tasks.control, historyFlushMs };
    return new RunRecorder(deps, run, datasetName, onEvent);
  }

  /** A one-phase run through trainAdapter. */
  async #single(
    run: RunRecord,
    trainer: LoraTrainer,
    datasetName: string,
    onEvent: OnEvent,
    resume?: TrainCheckpoint,
  ): Promise<RunOutcome> {
    const recorder = await this.#recorder(run, datasetName, onEvent);
    return recorder.guard(async () => {
      let adapterId: string | null = null;
      try {
        const { result, evalLossAfter } = await trainAdapter(trainer, {
          resume,
          hooks: recorder.trainerHooks(1, 0),
          onStage: (stage) => recorder.stage(1, stage),
          onEvalBefore: (loss) => recorder.recordEvalBefore(1, loss),
          save: async (tensors, o) => {
            const suffix = o.result.status === 'stopped' ? ` (stopped at step ${o.result.steps})` : '';
            adapterId = await recorder.saveAdapter(tensors, suffix, {
              trainLossLast: o.result.trainLossLast,
              evalLossAfter: o.evalLossAfter,
            });
          },
        });
        return recorder.finish(result.status, result.steps, { trainLossLast: result.trainLossLast, evalLossAfter }, adapterId);
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
    if (!resume) onEvent({ type: 'phase', runId: run.id, phase: 1, message: 'Tokenizing the data…' });
    const recorder = await this.#recorder(run, datasetName, onEvent);
    const { db } = recorder;
    const phases = run.phases!;
    // Phase 2's steps are stored after phase 1's; the record is written once the data is tokenized.
    const offset = (phase: number) => (phase === 2 ? phases[0].steps : 0);
    let created = resume !== undefined;
    const body = async (): Promise<RunOutcome> => {
      const r = await runProgressive(gpu, llama, model.prep, {
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
          onPhase: (phase, stage) => recorder.stage(phase, stage),
          onEvalBefore: (phase, loss) => recorder.recordEvalBefore(phase, loss),
          onProgress: (phase, p) => recorder.trainerHooks(phase, offset(phase)).onProgress!(p),
          onCheckpoint: (phase, c) => recorder.trainerHooks(phase, offset(phase)).onCheckpoint!(c),
          onPhaseDone: async (phase, outcome) => {
            phases[phase - 1].outcome = outcome;
            await db.updateRun(run.id, { phases });
          },
          control: this.deps.tasks.control,
        },
      });
      try {
        const last = r.phase2 ?? r.phase1;
        phases[0].outcome = r.phase1;
        if (r.phase2) phases[1].outcome = r.phase2;
        const steps = (r.phase2 ? phases[0].steps : 0) + last.steps;
        const figures = { trainLossLast: last.trainLossLast, evalLossAfter: last.evalLossAfter };
        const suffix = r.status === 'stopped' ? ' (stopped)' : '';
        const adapterId = r.status === 'paused' ? null : await recorder.saveAdapter(await r.adapter.readTensors(), suffix, figures);
        await db.updateRun(run.id, { phases, forgetting: r.forgetting });
        const outcome = await recorder.finish(r.status, steps, figures, adapterId);
        return { ...outcome, phases: phases.map(phaseSummary), forgetting: r.forgetting };
      } finally {
        r.adapter.destroy();
      }
    };
    return recorder.guard(
      body,
      () => ({ phases: phases.map(phaseSummary), forgetting: null }),
      () => created,
    );
  }

  async #checkMemory(model: LoadedModel, settings: TrainSettings): Promise<void> {
    const weights = matrixFormatsOf(model.opened.weights, model.precision);
    const estimate = estimateTrainingMemory(model.opened.config, settings, deviceMemory(await this.deps.device.gpu()), weights);
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
        `No training examples are left after tokenizing (${data.droppedNoTargets} rows ` +
          `had nothing to learn within ${settings.maxLength} tokens).`,
      );
    }
    const llama = await this.deps.models.llama((message) => onEvent({ type: 'phase', runId, phase: 1, message }));
    const gpu = await this.deps.device.gpu();
    const adapter = startingAdapter(gpu, model.opened.config, settings.lora, settings.seed, start?.tensors ?? null, start?.source);
    return new LoraTrainer(gpu, llama, adapter, settings, data, padTokenId(model.prep));
  }
}

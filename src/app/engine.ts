/**
 * The engine behind the page: one GPU device, one loaded model, the datasets, runs, checkpoints
 * and adapters in IndexedDB. It runs in a Web Worker in the browser (worker.ts) and in-thread in
 * tests; the page only ever sees WebtuneEngineApi.
 */
import { analyzeDataset as analyzeRows, type DatasetAnalysis } from '../analysis/analyze';
import { builtinPresets, type Preset } from '../analysis/presets';
import { type ImportReport, parseJsonlBytes } from '../data/jsonl';
import { chatTemplateFromConfig } from '../data/chat-template';
import type { PrepTokenizer } from '../data/prepare';
import type { DatasetRow } from '../data/types';
import { evaluate, type EvaluationProgress, type EvaluationReport } from '../eval/evaluate';
import { generate } from '../eval/generate';
import { peftAdapterFiles } from '../export/peft';
import { zipFiles } from '../export/zip';
import { Gpu } from '../gpu/context';
import { requestDeviceWithAdapterLimits } from '../gpu/device';
import { GpuDeviceLostError, WebGpuUnavailableError } from '../gpu/errors';
import { LoraAdapter } from '../lora/adapter';
import type { FileSource } from '../model/file-source';
import { filesFromList } from '../model/file-source';
import { LlamaModel } from '../model/llama';
import { expectedTensorShapes, type OpenedModel, openModel } from '../model/weights';
import { newId, openWebtuneDb, type AdapterRecord, type HistoryPoint, type RunRecord, type WebtuneDb } from '../storage/db';
import { padTokenId, prepareRunData, prepTokenizerFor } from '../train/pipeline';
import { type TrainSettings, validateTrainSettings } from '../train/settings';
import { runProgressive } from '../train/progressive';
import { type TrainCheckpoint, type TrainControl, type TrainerHooks, LoraTrainer } from '../train/trainer';
import type {
  AdapterExport,
  AdapterSummary,
  DatasetPreview,
  DatasetSummary,
  DeviceInfo,
  ExportRequest,
  EvaluateRequest,
  GenerateRequest,
  GenerateResult,
  HubProgress,
  MemoryEstimate,
  ModelFileEntry,
  ModelInfo,
  RunEvent,
  RunOutcome,
  RunRequest,
  WebtuneEngineApi,
} from './api';
import { exportAdapter, peftBaseModel } from '../export/service';
import { importedAdapterRecord, readAdapterUpload } from './adapter-library';
import { describeDevice, runSelfCheck } from './gpu-check';
import { type FilterOptions, type FilterReport, filteredRows, filterReport } from './quality-filter';
import { type PresetPlan, type PresetPlanRequest, planPreset } from './run-plan';
import { phaseSummary, type ProgressiveEvent, type ProgressiveOutcome, progressivePhases, type ProgressiveRunRequest } from './progressive-run';
import { hubFileSource } from './hub';
import { estimateTrainingMemory } from './memory';

/** Something the user asked for that cannot happen now; the message says what to do instead. */
export class EngineStateError extends Error {
  override name = 'EngineStateError';
}

export interface EngineOptions {
  /** Where the GPU device comes from: the browser's WebGPU adapter by default, Dawn in Node tests. */
  requestDevice?: () => Promise<GPUDevice>;
  dbName?: string;
  /** Minimum time between two writes of training history, so fast steps do not queue up transactions. */
  historyFlushMs?: number;
}

interface LoadedModel {
  info: ModelInfo;
  /** Kept for merged exports, which read the base weights again tensor by tensor. */
  source: FileSource;
  opened: OpenedModel;
  prep: PrepTokenizer;
  /** Null until uploaded to the current device (again after a device loss). */
  llama: LlamaModel | null;
}

interface Preview {
  name: string;
  fileName: string;
  report: ImportReport;
}

type Task = 'loading a model' | 'training' | 'generating text' | 'evaluating';

const SAMPLE_ROWS = 5;

async function browserDevice(): Promise<GPUDevice> {
  if (typeof navigator === 'undefined' || !navigator.gpu) {
    throw new WebGpuUnavailableError(
      'This browser does not offer WebGPU. Use Chrome or Edge 113+ (on Linux, with WebGPU enabled in chrome://flags), ' +
        'Safari 26+ or Firefox 141+ on Windows.',
    );
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    // Reported as "no adapter" below, with what to do.
  }
  return requestDeviceWithAdapterLimits(adapter);
}

export class WebtuneEngine implements WebtuneEngineApi {
  readonly #options: EngineOptions;
  #db: Promise<WebtuneDb> | null = null;
  #gpu: Gpu | null = null;
  #deviceLost = false;
  #deviceInfo: DeviceInfo | null = null;
  #model: LoadedModel | null = null;
  #previews = new Map<string, Preview>();
  #busy: Task | null = null;
  #control: TrainControl = 'continue';
  #adapterCache: { id: string; adapter: LoraAdapter } | null = null;

  constructor(options: EngineOptions = {}) {
    this.#options = options;
  }

  async init(): Promise<DeviceInfo> {
    await this.#storage();
    if (this.#gpu && !this.#deviceLost && this.#deviceInfo) return this.#deviceInfo;
    try {
      const gpu = await this.#device();
      const selfCheck = await runSelfCheck(gpu);
      this.#deviceInfo = {
        ...describeDevice(gpu.device),
        state: selfCheck.ok ? 'ready' : 'failed',
        message: selfCheck.ok ? 'WebGPU works in this browser.' : 'This GPU computed wrong results; training on it would not be reliable.',
        selfCheck,
      };
    } catch (error) {
      this.#deviceInfo = {
        state: error instanceof WebGpuUnavailableError ? 'unavailable' : 'failed',
        message: error instanceof Error ? error.message : String(error),
        vendor: '',
        architecture: '',
        description: '',
        software: false,
        limits: null,
        shaderF16: false,
        selfCheck: null,
      };
    }
    return this.#deviceInfo;
  }

  // Models

  async loadLocalModel(files: ModelFileEntry[], name: string, onProgress?: (message: string) => void): Promise<ModelInfo> {
    // File objects lose webkitRelativePath when posted to a worker, so paths travel beside them.
    const source = filesFromList(new Map(files.map((f) => [f.path, f.file])), name);
    return this.#exclusive('loading a model', () => this.#loadModel(source, name, 'local', onProgress));
  }

  async loadHubModel(repoId: string, onProgress?: (progress: HubProgress) => void): Promise<ModelInfo> {
    return this.#exclusive('loading a model', async () => {
      const source = await hubFileSource(await this.#storage(), repoId.trim(), onProgress);
      return this.#loadModel(source, repoId.trim(), 'hub');
    });
  }

  async estimateMemory(input: RunRequest['settings']): Promise<MemoryEstimate> {
    const model = this.#requireModel();
    const settings = validateTrainSettings(input);
    const gpu = await this.#device();
    return estimateTrainingMemory(model.opened.config, settings, gpu.limits);
  }

  // Datasets

  async importDataset(name: string, file: Blob, fileName: string): Promise<DatasetPreview> {
    const report = parseJsonlBytes(new Uint8Array(await file.arrayBuffer()), { fileName });
    const previewId = newId('preview');
    this.#previews.set(previewId, { name: name.trim() || fileName, fileName, report });
    return {
      previewId,
      name: name.trim() || fileName,
      fileName,
      format: report.format,
      formats: report.formats,
      totalLines: report.totalLines,
      validRows: report.rows.length,
      skippedBlank: report.skippedBlank,
      errors: report.errors,
      sample: report.rows.slice(0, SAMPLE_ROWS),
      analysis: analyzeRows(report.rows),
    };
  }

  async commitDataset(previewId: string, name?: string): Promise<DatasetSummary> {
    const preview = this.#previews.get(previewId);
    if (!preview) throw new EngineStateError('This import preview is gone (it was imported or cancelled already); choose the file again.');
    const { report } = preview;
    if (report.rows.length === 0) {
      throw new EngineStateError(`${preview.fileName} has no valid rows to import; fix the lines listed in the report and choose it again.`);
    }
    const record = {
      id: newId('ds'),
      name: name?.trim() || preview.name,
      createdAt: Date.now(),
      format: report.format ?? 'mixed',
      rowCount: report.rows.length,
      rows: report.rows,
      invalidLineCount: report.errors.length,
      sourceFileName: preview.fileName,
    };
    await (await this.#storage()).saveDataset(record);
    this.#previews.delete(previewId);
    const { rows: _, ...summary } = record;
    return summary;
  }

  async discardDataset(previewId: string): Promise<void> {
    this.#previews.delete(previewId);
  }

  async listDatasets(): Promise<DatasetSummary[]> {
    return (await this.#storage()).listDatasets();
  }

  async deleteDataset(id: string): Promise<void> {
    await (await this.#storage()).deleteDataset(id);
  }

  // Analysis, presets and the quality filter

  async analyzeDataset(datasetId: string): Promise<DatasetAnalysis> {
    return analyzeRows((await (await this.#storage()).getDataset(datasetId)).rows);
  }

  async listPresets(): Promise<Preset[]> {
    return builtinPresets();
  }

  async planPreset(request: PresetPlanRequest): Promise<PresetPlan> {
    return planPreset((await (await this.#storage()).getDataset(request.datasetId)).rows, request);
  }

  async previewFilter(datasetId: string, options: FilterOptions): Promise<FilterReport> {
    return filterReport((await (await this.#storage()).getDataset(datasetId)).rows, options);
  }

  // Training

  async startRun(request: RunRequest, onEvent: (event: RunEvent) => void = () => {}): Promise<RunOutcome> {
    return this.#exclusive('training', async () => {
      this.#control = 'continue';
      const model = this.#requireModel();
      const init = request.initAdapterId ? await this.#adapterRecordFor(request.initAdapterId, model) : null;
      const settings = validateTrainSettings(
        init ? { ...request.settings, lora: { ...init.config, dropout: request.settings.lora?.dropout ?? init.config.dropout } } : request.settings,
      );
      const estimate = estimateTrainingMemory(model.opened.config, settings, (await this.#device()).limits);
      if (!estimate.fits) throw new EngineStateError(estimate.problems.join(' '));
      const db = await this.#storage();
      const dataset = await db.getDataset(request.datasetId);
      const evalDataset = request.evalDatasetId ? await db.getDataset(request.evalDatasetId) : null;
      const filter = request.filter ?? null;
      const rows = filteredRows(dataset.rows, filter, dataset.name);
      const { lora, ...training } = settings;
      const now = Date.now();
      const run: RunRecord = {
        id: newId('run'),
        createdAt: now,
        updatedAt: now,
        name: request.name?.trim() || `${model.info.name.split('/').pop()} · ${dataset.name}`,
        model: { id: model.info.name, source: model.info.source, architecture: model.info.architecture, parameterCount: model.info.parameterCount },
        datasetId: dataset.id,
        evalDatasetId: evalDataset?.id ?? null,
        settings: { lora, training },
        status: 'running',
        error: null,
        totalSteps: 0,
        step: 0,
        history: [],
        lastCheckpointStep: null,
        filter,
      };
      onEvent({ type: 'phase', runId: run.id, message: 'Tokenizing the data…' });
      const trainer = await this.#trainer(model, settings, rows, evalDataset?.rows ?? null, (message) =>
        onEvent({ type: 'phase', runId: run.id, message }),
      );
      if (init) trainer.adapter.loadTensors(adapterTensorMap(init), `the adapter "${init.name}"`);
      else trainer.adapter.initPeft(settings.seed);
      run.totalSteps = trainer.totalSteps;
      await db.createRun(run);
      return this.#train(run, trainer, dataset.name, onEvent);
    });
  }

  async resumeRun(runId: string, onEvent: (event: RunEvent) => void = () => {}): Promise<RunOutcome> {
    return this.#exclusive('training', async () => {
      this.#control = 'continue';
      const db = await this.#storage();
      const run = await db.getRun(runId);
      if (run.status !== 'running' && run.status !== 'paused') {
        throw new EngineStateError(`The run "${run.name}" is ${run.status}; only paused or interrupted runs can be resumed.`);
      }
      const checkpoint = await db.latestCheckpoint(runId);
      if (!checkpoint) {
        throw new EngineStateError(`The run "${run.name}" stopped before its first checkpoint, so there is nothing to resume; start it again.`);
      }
      const model = this.#requireModel();
      if (model.info.name !== run.model.id || model.info.parameterCount !== run.model.parameterCount) {
        throw new EngineStateError(`The run "${run.name}" trains ${run.model.id}; load that model first (now loaded: ${model.info.name}).`);
      }
      const settings = validateTrainSettings({ ...(run.settings.training as Partial<TrainSettings>), lora: run.settings.lora });
      const dataset = await db.getDataset(run.datasetId);
      const evalRows = run.evalDatasetId ? (await db.getDataset(run.evalDatasetId)).rows : null;
      const trainer = await this.#trainer(model, settings, filteredRows(dataset.rows, run.filter ?? null, dataset.name), evalRows, (message) =>
        onEvent({ type: 'phase', runId, message }),
      );
      // Steps after the checkpoint are trained again, so their history goes.
      const history = run.history.filter((p) => p.step <= checkpoint.step);
      const resumed = await db.updateRun(runId, { status: 'running', error: null, history, step: checkpoint.step });
      const resume: TrainCheckpoint = {
        step: checkpoint.step,
        params: checkpoint.params,
        m: checkpoint.m,
        v: checkpoint.v,
        cursor: { epoch: checkpoint.dataCursor.epoch, batchIndex: checkpoint.dataCursor.batchIndex },
        elapsedMs: history.filter((p) => p.step === checkpoint.step).at(-1)?.elapsedMs ?? 0,
        trainLossFirst: history.find((p) => p.loss !== undefined)?.loss ?? null,
      };
      return this.#train(resumed, trainer, dataset.name, onEvent, resume);
    });
  }

  async startProgressiveRun(request: ProgressiveRunRequest, onEvent: (event: ProgressiveEvent) => void = () => {}): Promise<ProgressiveOutcome> {
    return this.#exclusive('training', async () => {
      this.#control = 'continue';
      const model = this.#requireModel();
      const settings = validateTrainSettings(request.settings);
      const gpu = await this.#device();
      const estimate = estimateTrainingMemory(model.opened.config, settings, gpu.limits);
      if (!estimate.fits) throw new EngineStateError(estimate.problems.join(' '));
      const db = await this.#storage();
      const dataset = await db.getDataset(request.datasetId);
      const filter = request.filter ?? null;
      const { phase1, phase2 } = progressivePhases(filteredRows(dataset.rows, filter, dataset.name), dataset.name);
      const llama = await this.#llama(model);
      const result = await runProgressive(gpu, llama, model.prep, {
        phase1: { rows: phase1.rows, evalRows: null, settings },
        phase2: { rows: phase2.rows, evalRows: null, settings },
        hooks: {
          onPhase: (phase, stage) => onEvent({ type: 'phase', phase, stage }),
          onProgress: (phase, progress) => onEvent({ type: 'progress', phase, progress }),
          control: () => this.#control,
        },
      });
      try {
        const { lora, ...training } = settings;
        const last = result.phase2 ?? result.phase1;
        const adapterId = newId('adapter');
        const name = request.name?.trim() || `${model.info.name.split('/').pop()} · ${dataset.name} (progressive)`;
        await db.saveAdapter({
          id: adapterId,
          name: result.status === 'stopped' ? `${name} (stopped)` : name,
          createdAt: Date.now(),
          runId: null,
          baseModel: model.info.name,
          datasetName: dataset.name,
          settings: { lora, training },
          finalTrainLoss: last.result.trainLossLast,
          finalEvalLoss: last.evalLossAfter,
          config: lora,
          tensors: [...(await result.adapter.readTensors())].map(([tensor, t]) => ({ name: tensor, shape: t.shape, data: t.data })),
        });
        return {
          status: result.status,
          adapterId,
          phases: [
            phaseSummary(1, phase1.tasks, phase1.rows.length, result.phase1),
            ...(result.phase2 ? [phaseSummary(2, phase2.tasks, phase2.rows.length, result.phase2)] : []),
          ],
          forgetting: result.forgetting,
        };
      } finally {
        result.adapter.destroy();
      }
    });
  }

  async pause(): Promise<void> {
    if (this.#busy === 'training') this.#control = 'pause';
  }

  async stop(): Promise<void> {
    if (this.#busy === 'training') this.#control = 'stop';
  }

  async listRuns(): Promise<RunRecord[]> {
    return (await this.#storage()).listRuns();
  }

  // Generation and adapters

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    return this.#exclusive('generating text', async () => {
      const model = this.#requireModel();
      const llama = await this.#llama(model);
      const scale = request.adapterScale ?? 1;
      if (!Number.isFinite(scale)) throw new EngineStateError(`The adapter scale must be a number (1: as trained, 0: off), got ${scale}.`);
      const stored = request.adapterId ? await this.#storedAdapter(request.adapterId, model) : null;
      // Scale 0 skips the adapter's work altogether; any other scale is a view on the cached weights.
      const adapter = !stored || scale === 0 ? null : scale === 1 ? stored : stored.scaledBy(scale);
      const started = performance.now();
      const result = await generate(llama, model.prep.tokenizer, adapter, request.prompt, {
        maxNewTokens: request.maxNewTokens,
        temperature: request.temperature,
      });
      return { text: result.text, tokens: result.ids.length, ms: performance.now() - started };
    });
  }

  async evaluate(request: EvaluateRequest, onProgress?: (progress: EvaluationProgress) => void): Promise<EvaluationReport> {
    return this.#exclusive('evaluating', async () => {
      const model = this.#requireModel();
      const llama = await this.#llama(model);
      const db = await this.#storage();
      const dataset = await db.getDataset(request.datasetId);
      const record = request.adapterId ? await db.getAdapter(request.adapterId) : null;
      const adapter = request.adapterId ? await this.#storedAdapter(request.adapterId, model) : null;
      // Both models are scored on sequences cut where the adapter's training cut them.
      const maxLength = record?.settings.training.maxLength;
      return evaluate(llama, model.prep, adapter, dataset.rows, {
        maxNewTokens: request.maxNewTokens,
        temperature: request.temperature,
        adapterLabel: record?.name,
        ...(typeof maxLength === 'number' ? { maxLength } : {}),
        onProgress,
      });
    });
  }

  async listAdapters(): Promise<AdapterSummary[]> {
    return (await this.#storage()).listAdapters();
  }

  async renameAdapter(id: string, name: string): Promise<void> {
    if (!name.trim()) throw new EngineStateError('An adapter needs a name.');
    await (await this.#storage()).renameAdapter(id, name.trim());
  }

  async deleteAdapter(id: string): Promise<void> {
    await (await this.#storage()).deleteAdapter(id);
    if (this.#adapterCache?.id === id) this.#dropAdapterCache();
  }

  async exportAdapterZip(id: string): Promise<Uint8Array> {
    const record = await (await this.#storage()).getAdapter(id);
    return zipFiles(peftAdapterFiles({ config: record.config, tensors: adapterTensorMap(record) }, { baseModel: peftBaseModel(record) }));
  }

  async importAdapter(source: ModelFileEntry[] | Blob, name?: string): Promise<AdapterSummary> {
    if (!this.#model) {
      throw new EngineStateError('Load the base model first: an imported adapter is checked against the loaded model, tensor by tensor.');
    }
    const model = this.#model;
    const upload = await readAdapterUpload(source, model.opened.config);
    const record = importedAdapterRecord(upload, { id: newId('adapter'), name, baseModel: model.info.name, createdAt: Date.now() });
    await (await this.#storage()).saveAdapter(record);
    const { tensors: _, ...summary } = record;
    return summary;
  }

  async exportAdapter(request: ExportRequest): Promise<AdapterExport> {
    if (request.dtype !== undefined && request.dtype !== 'same' && request.dtype !== 'f32') {
      throw new EngineStateError(`The merged dtype must be "same" (as the base) or "f32", got ${JSON.stringify(request.dtype)}.`);
    }
    const record = await (await this.#storage()).getAdapter(request.adapterId);
    const model = this.#model;
    if (!model || model.info.name !== record.baseModel) {
      throw new EngineStateError(
        `Load ${record.baseModel}, the base model of "${record.name}", to export it: the export is checked against the base ` +
          `(now loaded: ${model?.info.name ?? 'no model'}).`,
      );
    }
    return exportAdapter(record, { config: model.opened.config, source: model.source }, request);
  }

  // Internals

  #storage(): Promise<WebtuneDb> {
    this.#db ??= openWebtuneDb(this.#options.dbName).catch((error) => {
      this.#db = null;
      throw error;
    });
    return this.#db;
  }

  /** The current device, or a new one after a loss (the model's weights are uploaded again when next needed). */
  async #device(): Promise<Gpu> {
    if (this.#gpu && !this.#deviceLost) return this.#gpu;
    const device = await (this.#options.requestDevice ?? browserDevice)();
    const gpu = new Gpu(device);
    void device.lost.then(() => {
      if (this.#gpu === gpu) this.#deviceLost = true;
    });
    this.#gpu = gpu;
    this.#deviceLost = false;
    this.#deviceInfo = null;
    if (this.#model) this.#model.llama = null;
    this.#adapterCache = null;
    return gpu;
  }

  async #llama(model: LoadedModel, onProgress?: (message: string) => void): Promise<LlamaModel> {
    const gpu = await this.#device();
    if (!model.llama) {
      model.llama = await LlamaModel.load(gpu, model.opened.weights, (done, total) =>
        onProgress?.(`Uploading weights to the GPU: ${done} of ${total} parts`),
      );
    }
    return model.llama;
  }

  async #loadModel(source: FileSource, name: string, origin: 'hub' | 'local', onProgress?: (message: string) => void): Promise<ModelInfo> {
    onProgress?.('Reading config, tokenizer and safetensors headers…');
    const opened = await openModel(source);
    const prep = prepTokenizerFor(opened);
    const { config } = opened;
    let parameterCount = 0;
    for (const shape of expectedTensorShapes(config).values()) parameterCount += shape.reduce((a, b) => a * b, 1);
    const info: ModelInfo = {
      name,
      source: origin,
      architecture: config.architecture,
      parameterCount,
      layers: config.numLayers,
      hidden: config.hiddenSize,
      intermediate: config.intermediateSize,
      heads: config.numHeads,
      kvHeads: config.numKvHeads,
      vocab: config.vocabSize,
      maxPositions: config.maxPositionEmbeddings,
      weightBytes: parameterCount * 4,
      tokenizerOk: prep.tokenizer.encode('Hello world').length > 0,
      chatTemplate: chatTemplateFromConfig(opened.tokenizerConfig) !== null,
    };
    this.#releaseModel();
    const model: LoadedModel = { info, source, opened, prep, llama: null };
    await this.#llama(model, onProgress);
    this.#model = model;
    return info;
  }

  /** Frees the GPU memory of the loaded model before another one takes its place. */
  #releaseModel(): void {
    this.#dropAdapterCache();
    const weights = this.#model?.llama?.weights;
    if (weights) {
      for (const piece of [...weights.embedding, ...weights.lmHead]) ('destroy' in piece.weight ? piece.weight : piece.weight.buffer).destroy();
      for (const layer of weights.layers) for (const buffer of Object.values(layer)) buffer?.destroy();
      weights.finalNorm.destroy();
    }
    this.#model = null;
  }

  #requireModel(): LoadedModel {
    if (!this.#model) throw new EngineStateError('No model is loaded yet; pick a model folder or a Hugging Face model first.');
    return this.#model;
  }

  async #trainer(
    model: LoadedModel,
    settings: TrainSettings,
    rows: readonly DatasetRow[],
    evalRows: readonly DatasetRow[] | null,
    onPhase: (message: string) => void,
  ): Promise<LoraTrainer> {
    const data = prepareRunData(rows, evalRows, model.prep, settings);
    if (data.train.length === 0) {
      throw new EngineStateError(
        `No training examples are left after tokenizing (${data.droppedNoTargets} rows had nothing to learn within ${settings.maxLength} tokens).`,
      );
    }
    const llama = await this.#llama(model, onPhase);
    const gpu = await this.#device();
    const adapter = new LoraAdapter(gpu, model.opened.config, settings.lora);
    return new LoraTrainer(gpu, llama, adapter, settings, data, padTokenId(model.prep));
  }

  async #train(
    run: RunRecord,
    trainer: LoraTrainer,
    datasetName: string,
    onEvent: (event: RunEvent) => void,
    resume?: TrainCheckpoint,
  ): Promise<RunOutcome> {
    const db = await this.#storage();
    const runId = run.id;
    const history = new HistoryWriter(db, runId, this.#options.historyFlushMs ?? 1000);
    const hooks: TrainerHooks = {
      onProgress: (p) => {
        history.add({ step: p.step, epoch: p.epoch, loss: p.loss, evalLoss: p.evalLoss, lr: p.lr, tokensPerSecond: p.tokensPerSecond, elapsedMs: p.elapsedMs });
        onEvent({ type: 'progress', runId, progress: p });
      },
      onCheckpoint: async (c) => {
        await history.flush();
        await db.saveCheckpoint({
          runId,
          step: c.step,
          createdAt: Date.now(),
          params: c.params,
          m: c.m,
          v: c.v,
          optimizerStep: c.step,
          // The trainer derives each epoch's order from (seed, epoch), so none needs storing.
          dataCursor: { ...c.cursor, order: [] },
          rngSeed: trainer.settings.seed,
        });
        await db.updateRun(runId, { step: c.step });
        onEvent({ type: 'checkpoint', runId, step: c.step });
      },
      control: () => this.#control,
    };
    try {
      return await this.#guardDevice(runId, async (): Promise<RunOutcome> => {
        if (!resume) {
          onEvent({ type: 'phase', runId, message: 'Measuring the eval loss before training…' });
          const before = await trainer.evalLoss();
          if (before !== null) {
            const point: HistoryPoint = { step: 0, epoch: 0, evalLoss: before, lr: 0, elapsedMs: 0 };
            run.history.push(point);
            await db.appendHistory(runId, [point]);
          }
        }
        onEvent({ type: 'started', run });
        const result = await trainer.run(hooks, resume);
        await history.flush();
        let finalEvalLoss = result.evalLoss;
        // The trainer evaluates after its last step; a stopped run, or one resumed at its very end, has no fresh figure.
        if (result.status === 'stopped' || (result.status === 'completed' && finalEvalLoss === null)) finalEvalLoss = await trainer.evalLoss();
        const finalTrainLoss = result.trainLossLast ?? run.history.filter((p) => p.loss !== undefined).at(-1)?.loss ?? null;
        let adapterId: string | null = null;
        if (result.status !== 'paused') {
          const model = this.#requireModel();
          adapterId = newId('adapter');
          const tensors = await trainer.adapter.readTensors();
          await db.saveAdapter({
            id: adapterId,
            name: result.status === 'stopped' ? `${run.name} (stopped at step ${result.steps})` : run.name,
            createdAt: Date.now(),
            runId,
            baseModel: model.info.name,
            datasetName,
            settings: run.settings,
            finalTrainLoss,
            finalEvalLoss,
            config: trainer.settings.lora,
            tensors: [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
          });
        }
        await db.updateRun(runId, { status: result.status, step: result.steps, error: null });
        return {
          runId,
          status: result.status,
          step: result.steps,
          totalSteps: result.totalSteps,
          finalTrainLoss,
          finalEvalLoss,
          adapterId,
          error: null,
        };
      });
    } finally {
      await history.flush().catch(() => undefined);
      trainer.adapter.destroy();
    }
  }

  /**
   * Runs GPU work of a run. A lost device (driver reset, GPU process crash, tab in the background
   * too long) pauses the run with the reason and keeps its checkpoints; other errors fail it.
   */
  async #guardDevice(runId: string, body: () => Promise<RunOutcome>): Promise<RunOutcome> {
    const db = await this.#storage();
    try {
      return await body();
    } catch (error) {
      const lost = error instanceof GpuDeviceLostError || (await this.#lostSoon());
      const message = error instanceof Error ? error.message : String(error);
      if (lost) {
        this.#deviceLost = true;
        const run = await db.updateRun(runId, { status: 'paused', error: message });
        return {
          runId,
          status: 'paused',
          step: run.lastCheckpointStep ?? 0,
          totalSteps: run.totalSteps,
          finalTrainLoss: null,
          finalEvalLoss: null,
          adapterId: null,
          error: message,
        };
      }
      await db.updateRun(runId, { status: 'failed', error: message }).catch(() => undefined);
      throw error;
    }
  }

  /** A failed readback can reject before device.lost resolves; give the loss a moment to show. */
  async #lostSoon(): Promise<boolean> {
    const device = this.#gpu?.device;
    if (!device) return false;
    if (this.#deviceLost) return true;
    return Promise.race([device.lost.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
  }

  /** A stored adapter, refused unless it was trained on (or imported for) the loaded model. */
  async #adapterRecordFor(id: string, model: LoadedModel): Promise<AdapterRecord> {
    const record = await (await this.#storage()).getAdapter(id);
    if (record.baseModel !== model.info.name) {
      throw new EngineStateError(`The adapter "${record.name}" was trained on ${record.baseModel}; load that model to use it.`);
    }
    return record;
  }

  async #storedAdapter(id: string, model: LoadedModel): Promise<LoraAdapter> {
    if (this.#adapterCache?.id === id) return this.#adapterCache.adapter;
    const record = await this.#adapterRecordFor(id, model);
    const adapter = LoraAdapter.fromTensors(await this.#device(), model.opened.config, record.config, adapterTensorMap(record), record.name);
    this.#dropAdapterCache();
    this.#adapterCache = { id, adapter };
    return adapter;
  }

  #dropAdapterCache(): void {
    if (this.#adapterCache) this.#adapterCache.adapter.destroy();
    this.#adapterCache = null;
  }

  /** GPU work one at a time: a generation between a training step's forward and backward would overwrite its activations. */
  async #exclusive<T>(task: Task, body: () => Promise<T>): Promise<T> {
    if (this.#busy) throw new EngineStateError(`webtune is busy ${this.#busy}; wait until it finishes, or pause it.`);
    this.#busy = task;
    try {
      return await body();
    } finally {
      this.#busy = null;
    }
  }
}

function adapterTensorMap(record: AdapterRecord): Map<string, { shape: number[]; data: Float32Array }> {
  return new Map(record.tensors.map((t) => [t.name, { shape: t.shape, data: t.data }]));
}

/** Batches history points into few transactions; `flush` writes whatever is pending. */
class HistoryWriter {
  #pending: HistoryPoint[] = [];
  #lastWrite = 0;
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: WebtuneDb,
    private readonly runId: string,
    private readonly intervalMs: number,
  ) {}

  add(point: HistoryPoint): void {
    this.#pending.push(point);
    if (performance.now() - this.#lastWrite >= this.intervalMs) void this.flush().catch(() => undefined);
  }

  flush(): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      if (this.#pending.length === 0) return;
      const points = this.#pending;
      this.#pending = [];
      this.#lastWrite = performance.now();
      await this.db.appendHistory(this.runId, points);
    });
    return this.#writing;
  }
}

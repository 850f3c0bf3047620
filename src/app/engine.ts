/**
 * The engine behind the page, as one object: a facade over the services that do the work (device,
 * model, datasets, runs, adapters, inference). It runs in a Web Worker in the browser
 * (src/worker/worker.ts) and in-thread in tests; the page only ever sees WebtuneEngineApi.
 */
import type { DatasetAnalysis } from '../analysis/analyze';
import type { Preset } from '../analysis/presets';
import type { EvaluationProgress, EvaluationReport } from '../eval/evaluate';
import { openWebtuneDb, type AdapterSummary, type DatasetSummary, type RunRecord, type WebtuneDb } from '../storage/db';
import { AdapterLibrary } from './adapters';
import type {
  AdapterExport,
  DatasetPreview,
  DeviceInfo,
  EvaluateRequest,
  ExportRequest,
  GenerateRequest,
  GenerateResult,
  HubProgress,
  MemoryEstimate,
  ModelFileEntry,
  ModelLoadOptions,
  ModelInfo,
  ProgressiveEvent,
  ProgressiveOutcome,
  ProgressiveRunRequest,
  RunEvent,
  RunOutcome,
  RunRequest,
  WebtuneEngineApi,
} from './api';
import { DatasetService } from './datasets';
import { browserDevice, DeviceSession } from './device';
import { InferenceService } from './inference';
import { estimateTrainingMemory } from './memory';
import { ModelSession } from './models';
import type { FilterOptions, FilterReport } from './quality-filter';
import type { PresetPlan, PresetPlanRequest } from './run-plan';
import { RunService } from './runs';
import { TaskGuard } from './tasks';
import { validateTrainSettings } from '../train/settings';

export { EngineStateError } from './errors';

export interface EngineOptions {
  /** Where the GPU device comes from: the browser's WebGPU adapter by default, Dawn in Node tests. */
  requestDevice?: () => Promise<GPUDevice>;
  dbName?: string;
  /** Minimum time between two writes of training history, so fast steps do not queue up transactions. */
  historyFlushMs?: number;
}

export class WebtuneEngine implements WebtuneEngineApi {
  readonly #storage: () => Promise<WebtuneDb>;
  readonly #tasks = new TaskGuard();
  readonly #device: DeviceSession;
  readonly #models: ModelSession;
  readonly #datasets: DatasetService;
  readonly #adapters: AdapterLibrary;
  readonly #runs: RunService;
  readonly #inference: InferenceService;

  constructor(options: EngineOptions = {}) {
    let db: Promise<WebtuneDb> | null = null;
    this.#storage = () =>
      (db ??= openWebtuneDb(options.dbName).catch((error) => {
        db = null;
        throw error;
      }));
    this.#device = new DeviceSession(options.requestDevice ?? browserDevice);
    this.#models = new ModelSession(this.#device, this.#storage);
    this.#datasets = new DatasetService(this.#storage);
    this.#adapters = new AdapterLibrary(this.#storage, this.#device, this.#models);
    this.#runs = new RunService({
      storage: this.#storage,
      device: this.#device,
      models: this.#models,
      adapters: this.#adapters,
      tasks: this.#tasks,
      historyFlushMs: options.historyFlushMs ?? 1000,
    });
    this.#inference = new InferenceService(this.#storage, this.#models, this.#adapters);
  }

  async init(): Promise<DeviceInfo> {
    await this.#storage();
    return this.#device.describe();
  }

  loadLocalModel(
    files: ModelFileEntry[],
    name: string,
    onProgress?: (message: string) => void,
    options?: ModelLoadOptions,
  ): Promise<ModelInfo> {
    return this.#tasks.exclusive('loading a model', () => this.#models.loadLocal(files, name, onProgress, options));
  }

  loadHubModel(repoId: string, onProgress?: (progress: HubProgress) => void, options?: ModelLoadOptions): Promise<ModelInfo> {
    return this.#tasks.exclusive('loading a model', () => this.#models.loadHub(repoId, onProgress, options));
  }

  async estimateMemory(settings: RunRequest['settings']): Promise<MemoryEstimate> {
    const model = this.#models.current();
    const precision = model.info.weightPrecision;
    const limits = (await this.#device.gpu()).limits;
    return estimateTrainingMemory(model.opened.config, validateTrainSettings(settings), limits, precision === 'mixed' ? 'f32' : precision);
  }

  importDataset(name: string, file: Blob, fileName: string): Promise<DatasetPreview> {
    return this.#datasets.preview(name, file, fileName);
  }

  commitDataset(previewId: string, name?: string): Promise<DatasetSummary> {
    return this.#datasets.commit(previewId, name);
  }

  async discardDataset(previewId: string): Promise<void> {
    this.#datasets.discard(previewId);
  }

  listDatasets(): Promise<DatasetSummary[]> {
    return this.#datasets.list();
  }

  deleteDataset(id: string): Promise<void> {
    return this.#datasets.delete(id);
  }

  analyzeDataset(datasetId: string): Promise<DatasetAnalysis> {
    return this.#datasets.analyze(datasetId);
  }

  async listPresets(): Promise<Preset[]> {
    return this.#datasets.presets();
  }

  planPreset(request: PresetPlanRequest): Promise<PresetPlan> {
    return this.#datasets.planPreset(request);
  }

  previewFilter(datasetId: string, options: FilterOptions): Promise<FilterReport> {
    return this.#datasets.previewFilter(datasetId, options);
  }

  startRun(request: RunRequest, onEvent?: (event: RunEvent) => void): Promise<RunOutcome> {
    return this.#tasks.exclusive('training', () => this.#runs.start(request, onEvent));
  }

  resumeRun(runId: string, onEvent?: (event: RunEvent) => void): Promise<RunOutcome> {
    return this.#tasks.exclusive('training', () => this.#runs.resume(runId, onEvent));
  }

  startProgressiveRun(request: ProgressiveRunRequest, onEvent?: (event: ProgressiveEvent) => void): Promise<ProgressiveOutcome> {
    return this.#tasks.exclusive('training', () => this.#runs.startProgressive(request, onEvent));
  }

  async pause(): Promise<void> {
    this.#tasks.request('pause');
  }

  async stop(): Promise<void> {
    this.#tasks.request('stop');
  }

  listRuns(): Promise<RunRecord[]> {
    return this.#runs.list();
  }

  generate(request: GenerateRequest): Promise<GenerateResult> {
    return this.#tasks.exclusive('generating text', () => this.#inference.generate(request));
  }

  evaluate(request: EvaluateRequest, onProgress?: (progress: EvaluationProgress) => void): Promise<EvaluationReport> {
    return this.#tasks.exclusive('evaluating', () => this.#inference.evaluate(request, onProgress));
  }

  listAdapters(): Promise<AdapterSummary[]> {
    return this.#adapters.list();
  }

  renameAdapter(id: string, name: string): Promise<void> {
    return this.#adapters.rename(id, name);
  }

  deleteAdapter(id: string): Promise<void> {
    return this.#adapters.delete(id);
  }

  exportAdapterZip(id: string): Promise<Uint8Array> {
    return this.#adapters.exportZip(id);
  }

  importAdapter(source: ModelFileEntry[] | Blob, name?: string): Promise<AdapterSummary> {
    return this.#adapters.import(source, name);
  }

  exportAdapter(request: ExportRequest): Promise<AdapterExport> {
    return this.#adapters.export(request);
  }
}

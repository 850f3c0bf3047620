/**
 * The engine behind the page, as one object: a facade over the services that do the work (device,
 * model, datasets, runs, adapters, inference). It runs in a Web Worker in the browser
 * (src/worker/worker.ts) and in-thread in tests; the page only ever sees WebtuneEngineApi.
 */
import type { DatasetAnalysis } from '../analysis/analyze';
import type { Preset } from '../analysis/presets';
import type { EvaluationProgress, EvaluationReport } from '../eval/evaluate';
import {
  openWebtuneDb,
  type AdapterSummary,
  type ConversationRecord,
  type DatasetSummary,
  type DocumentRecord,
  type Rating,
  type RunRecord,
  type StorageUsage,
  type WebtuneDb,
} from '../storage/db';
import { type CachedDownload, listCachedDownloads, removeCachedDownload } from '../storage/cached-downloads';
import { forgetFolder, type RememberedFolder, rememberedFolders, rememberFolder } from '../storage/folder-handles';
import { AdapterLibrary } from './adapters';
import type {
  AdapterExport,
  ChatDatasetRequest,
  ChatEvent,
  ChatRequest,
  ChatResult,
  DatasetPreview,
  DeviceInfo,
  EvaluateRequest,
  ExportRequest,
  GenerateRequest,
  GenerateResult,
  HubProgress,
  ImportProgress,
  MemoryEstimate,
  ModelFileEntry,
  ModelLoadOptions,
  ModelInfo,
  ProgressiveEvent,
  ProgressiveOutcome,
  ProgressiveRunRequest,
  ReplyRef,
  RunEvent,
  RunOutcome,
  RunRequest,
  WebtuneEngineApi,
} from './api';
import { ChatService } from './chat';
import type { ConversationQuery, ConversationSummary } from './chat-log';
import { DatasetService } from './datasets';
import { DocumentLibrary } from './documents';
import type { EnhancementReport } from './enhance';
import { type DownloadPlanRequest, type PlannedDownload, planDownloads } from './download-plan';
import { browserDevice, DeviceSession } from './device';
import { InferenceService } from './inference';
import { matrixFormatsOf } from '../model/gpu-weights';
import { deviceMemory, estimateTrainingMemory } from './memory';
import { ModelSession } from './models';
import type { FilterOptions, FilterReport } from './quality-filter';
import type { PresetPlan, PresetPlanRequest } from './run-plan';
import { RunService } from './runs';
import { TaskGuard } from './tasks';
import { validateTrainSettings } from '../train/settings';

import { EngineStateError } from './errors';

export { EngineStateError };

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
  readonly #documents: DocumentLibrary;
  readonly #chat: ChatService;

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
    this.#documents = new DocumentLibrary(this.#storage);
    this.#chat = new ChatService(this.#storage, this.#models, this.#adapters, this.#documents);
  }

  async init(): Promise<DeviceInfo> {
    await this.#storage();
    // Imports a closed or crashed tab left half written are removed before anything lists datasets.
    await this.#datasets.removeAbandonedImports().catch(() => undefined);
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

  loadUrlModel(url: string, onProgress?: (progress: HubProgress) => void, options?: ModelLoadOptions): Promise<ModelInfo> {
    return this.#tasks.exclusive('loading a model', () => this.#models.loadUrl(url, onProgress, options));
  }

  async planDownloads(request: DownloadPlanRequest): Promise<PlannedDownload[]> {
    return planDownloads(await this.#storage(), request);
  }

  async rememberFolder(handle: FileSystemDirectoryHandle): Promise<void> {
    await rememberFolder(await this.#storage(), handle);
  }

  async rememberedFolders(): Promise<RememberedFolder[]> {
    return rememberedFolders(await this.#storage());
  }

  async forgetFolder(name: string): Promise<void> {
    await forgetFolder(await this.#storage(), name);
  }

  async cachedDownloads(): Promise<CachedDownload[]> {
    const loaded = this.#models.cacheId();
    return (await listCachedDownloads(await this.#storage())).map((d) => (d.id !== null && d.id === loaded ? { ...d, loaded: true } : d));
  }

  removeCachedDownload(id: string | null): Promise<void> {
    return this.#tasks.exclusive('removing downloaded files', async () => {
      if (id !== null && id === this.#models.cacheId()) {
        throw new EngineStateError(`${id} is the loaded model, whose merged exports read these files again: load another model first.`);
      }
      await removeCachedDownload(await this.#storage(), id);
    });
  }

  async storageUsage(): Promise<StorageUsage | null> {
    return (await this.#storage()).estimateUsage();
  }

  async estimateMemory(settings: RunRequest['settings']): Promise<MemoryEstimate> {
    const model = this.#models.current();
    const weights = matrixFormatsOf(model.opened.weights, model.precision);
    return estimateTrainingMemory(model.opened.config, validateTrainSettings(settings), deviceMemory(await this.#device.gpu()), weights);
  }

  importDataset(name: string, file: Blob, fileName: string, onProgress?: (progress: ImportProgress) => void): Promise<DatasetPreview> {
    return this.#datasets.preview(name, file, fileName, onProgress);
  }

  async cancelDatasetImport(): Promise<void> {
    this.#datasets.cancel();
  }

  importDatasetFrom(source: string, onProgress?: (progress: HubProgress) => void): Promise<DatasetPreview> {
    return this.#datasets.previewSource(source, onProgress);
  }

  commitDataset(previewId: string, name?: string): Promise<DatasetSummary> {
    return this.#datasets.commit(previewId, name);
  }

  discardDataset(previewId: string): Promise<void> {
    return this.#datasets.discard(previewId);
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

  previewEnhancement(datasetId: string): Promise<EnhancementReport> {
    return this.#datasets.previewEnhancement(datasetId);
  }

  applyEnhancement(datasetId: string, name?: string): Promise<DatasetSummary> {
    return this.#datasets.applyEnhancement(datasetId, name);
  }

  listDocuments(): Promise<DocumentRecord[]> {
    return this.#documents.list();
  }

  addDocument(file: Blob, fileName: string): Promise<DocumentRecord> {
    return this.#documents.add(file, fileName);
  }

  removeDocument(name: string): Promise<void> {
    return this.#documents.remove(name);
  }

  chat(request: ChatRequest, onEvent?: (event: ChatEvent) => void): Promise<ChatResult> {
    return this.#tasks.exclusive('generating text', () => this.#chat.send(request, onEvent));
  }

  async stopGeneration(): Promise<void> {
    this.#chat.stop();
  }

  listConversations(query?: ConversationQuery): Promise<ConversationSummary[]> {
    return this.#chat.list(query);
  }

  getConversation(id: string): Promise<ConversationRecord> {
    return this.#chat.get(id);
  }

  deleteConversation(id: string): Promise<void> {
    return this.#chat.delete(id);
  }

  rateReply(ref: ReplyRef, rating: Rating | null): Promise<ConversationRecord> {
    return this.#chat.rate(ref, rating);
  }

  correctReply(ref: ReplyRef, correction: string | null): Promise<ConversationRecord> {
    return this.#chat.correct(ref, correction);
  }

  chooseReply(ref: ReplyRef): Promise<ConversationRecord> {
    return this.#chat.choose(ref);
  }

  addConversationsToDataset(request: ChatDatasetRequest): Promise<DatasetSummary> {
    return this.#chat.toDataset(request);
  }

  exportConversations(ids: string[] | null): Promise<string> {
    return this.#chat.exportLog(ids);
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

/**
 * The one interface between the page and the engine. `WebtuneEngine` (engine.ts) implements it in
 * the same thread, which is how tests use it; the page reaches the same object in a Web Worker
 * through comlink (client.ts), so every method takes and returns structured-cloneable values and
 * callbacks are comlink proxies.
 */
import type { DatasetAnalysis } from '../analysis/analyze';
import type { Preset } from '../analysis/presets';
import type { DatasetContainer } from '../data/import';
import type { LineError } from '../data/jsonl';
import type { EvaluationProgress, EvaluationReport } from '../eval/evaluate';
import type { DatasetRow, SourceFormat } from '../data/types';
import type { LoraConfig } from '../lora/config';
import type { WeightFormat, WeightPrecision } from '../model/weight-format';
import type {
  AdapterSummary,
  ChatReply,
  ChatSource,
  ChatTurn,
  ChatTurnSettings,
  ConversationRecord,
  DatasetSummary,
  DocumentRecord,
  Rating,
  RunRecord,
  StorageUsage,
} from '../storage/db';
import type { CachedDownload } from '../storage/cached-downloads';
import type { RememberedFolder } from '../storage/folder-handles';
export type { CachedDownload, RememberedFolder, StorageUsage };
import type { ConversationQuery, ConversationSummary } from './chat-log';
import type { EnhancementReport } from './enhance';
import type { TrainProgress } from '../train/trainer';
import type { TrainSettings } from '../train/settings';
import type { AdapterDownload, ExportFormat, MergedGgufType, OllamaSetup } from '../export/service';
import type { RunStage } from '../train/run';
import type { DownloadPlanRequest, ModelRef, PlannedDownload } from './download-plan';
import type { ImportProgress } from './dataset-import';
import type { FilterOptions, FilterReport } from './quality-filter';
import type { PresetPlan, PresetPlanRequest } from './run-plan';
import type { ForgettingReport, ProgressivePhaseSummary, ProgressiveRunRequest } from './progressive-run';

export type { AdapterSummary, DatasetSummary, RunRecord, RunStage, TrainProgress, TrainSettings };
export type { DownloadPlanRequest, ImportProgress, ModelRef, PlannedDownload };
export type { ExportFormat, ForgettingReport, MergedGgufType, OllamaSetup, ProgressivePhaseSummary, ProgressiveRunRequest };
export type { ChatReply, ChatSource, ChatTurn, ChatTurnSettings, ConversationQuery, ConversationRecord, ConversationSummary };
export type { DocumentRecord, EnhancementReport, Rating };
export type { DatasetAnalysis, EvaluationProgress, EvaluationReport, FilterOptions, FilterReport, Preset, PresetPlan, PresetPlanRequest };

export type SelfCheckResult =
  | { ok: true; count: number; ms: number }
  | { ok: false; count: number; mismatches: number; index: number; expected: number; actual: number };

export interface DeviceInfo {
  /** 'unavailable': no WebGPU here; 'failed': WebGPU exists but the device or its self-check failed. */
  state: 'ready' | 'unavailable' | 'failed';
  message: string;
  vendor: string;
  architecture: string;
  description: string;
  /** Software rasterizers (SwiftShader, llvmpipe) work but are far too slow to train real models on. */
  software: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
  } | null;
  shaderF16: boolean;
  selfCheck: SelfCheckResult | null;
}

/** A model file handed over from a folder picker or a drop, with its path inside the folder. */
export interface ModelFileEntry {
  path: string;
  file: Blob;
}

export interface ModelLoadOptions {
  /** 'auto' (default) keeps each tensor's checkpoint dtype; f32, bf16 or f16 stores every weight matrix so. */
  weights?: WeightPrecision;
}

export interface ModelInfo {
  /** Hub id (`org/name`), the local folder name, or a folder URL's last path segment. */
  name: string;
  source: 'hub' | 'local' | 'url';
  /** `source` 'url': the folder URL the files came from. */
  url?: string;
  architecture: string;
  parameterCount: number;
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  maxPositions: number;
  /** Bytes the frozen weights take on the GPU, in the precision they are stored in there. */
  weightBytes: number;
  /** 'hf': a Hugging Face folder (config.json, safetensors); 'gguf': a GGUF file, an Ollama blob or the shards of one. */
  format: 'hf' | 'gguf';
  /** GGUF only: the file's tensors and bytes per ggml type (F32, Q8_0, Q4_K, ...), largest share first. */
  quantization: { type: string; tensors: number; bytes: number }[] | null;
  /** GGUF only: the size of the file(s). */
  fileBytes: number | null;
  /** How the frozen weight matrices are stored on the GPU ('mixed' when 'auto' kept a checkpoint's mixed dtypes). */
  weightPrecision: WeightFormat | 'mixed';
  /** tokenizer.json loaded and encodes text. */
  tokenizerOk: boolean;
  /** The model's tokenizer.json, or (GGUF) the tokenizer built from the file's tokenizer.ggml.* metadata. */
  tokenizerSource: 'tokenizer.json' | 'gguf';
  /** Why webtune's tokenization may differ from llama.cpp's on this GGUF; empty when it is the same. */
  tokenizerProblems: string[];
  /** tokenizer_config.json has its own chat template (otherwise a generic one is used for chat rows). */
  chatTemplate: boolean;
}

/** The GPU memory a run may plan for, and where that figure comes from (src/app/memory.ts `memoryBudget`). */
export interface MemoryBudget {
  bytes: number;
  /** The user's setting, a share of the memory the adapter reports, or the default where WebGPU reports none. */
  source: 'setting' | 'adapter' | 'default';
}

export interface MemoryEstimate {
  /** The frozen weights as stored on the GPU. */
  weightsBytes: number;
  /** LoRA parameters and their gradients. */
  adapterBytes: number;
  /** AdamW first and second moments. */
  optimizerBytes: number;
  /** Activations and scratch of one micro-batch of batchSize x maxLength tokens (the workspace plan). */
  activationBytes: number;
  /** AdamW's gradient-norm scratch, uniform blocks and the loss readbacks. */
  otherBytes: number;
  totalBytes: number;
  trainableParameters: number;
  /** The largest single GPU buffer the run needs, checked against the device's binding limits. */
  largestBufferBytes: number;
  /** False when a device limit rules the settings out; `problems` says which and what to change. */
  fits: boolean;
  problems: string[];
  /** Activation recomputation: the setting, whether the run uses it, and the totals without and with it. */
  recompute: { mode: 'auto' | 'on' | 'off'; on: boolean; withoutBytes: number; withBytes: number };
  budget: MemoryBudget;
  /** The total exceeds the budget even as planned (not a refusal: unless the user set it, the budget is a default). */
  overBudget: boolean;
}

export interface HubProgress {
  file: string;
  /** Bytes of this file received so far, and its size when the server says. */
  loaded: number;
  total: number | null;
  fromCache: boolean;
  /** Files finished out of those needed. */
  filesDone: number;
  filesTotal: number;
}

export interface DatasetPreview {
  previewId: string;
  name: string;
  fileName: string;
  format: SourceFormat | 'mixed' | null;
  formats: Record<SourceFormat, number>;
  totalLines: number;
  validRows: number;
  skippedBlank: number;
  /** The first invalid lines (up to 1,000), each with its 1-based number and the reason. */
  errors: LineError[];
  /** Every invalid line, counted. */
  errorCount: number;
  /** The first valid rows, to show what was understood. */
  sample: DatasetRow[];
  /** Task analysis of the valid rows and the training recommendation. */
  analysis: DatasetAnalysis;
  /** JSONL errors name lines; JSON lists entries (and the line they start on); Parquet rows. */
  container: DatasetContainer;
  /** `url:<URL>` or `hub:<reference>` for downloaded datasets, null for files. */
  source: string | null;
}

export interface RunRequest {
  datasetId: string;
  evalDatasetId: string | null;
  /** Validated by the engine (validateTrainSettings); unset fields take the defaults. */
  settings: Partial<Omit<TrainSettings, 'lora'>> & { lora?: Partial<LoraConfig> };
  name?: string;
  /**
   * Train further from this stored adapter instead of a fresh PEFT initialisation. Its weights fix
   * r, alpha, rsLoRA and the target modules, which replace those in `settings.lora`; dropout and
   * every training setting still come from `settings`.
   */
  initAdapterId?: string;
  /** Quality filter applied to the training rows (not the eval rows); stored with the run, so a resume trains on the same rows. */
  filter?: FilterOptions | null;
}

/**
 * What a run reports while it works, for every kind of run. `phase` is 1 for one-phase runs; a
 * progressive run's phase 2 reports phase 2. Steps count over the whole run (both phases).
 */
export type RunEvent =
  | { type: 'started'; run: RunRecord }
  /** `stage` is set when a stage of the run path begins; other messages (tokenizing, uploading) have none. */
  | { type: 'phase'; runId: string; message: string; phase: number; stage?: RunStage }
  | { type: 'progress'; runId: string; phase: number; progress: TrainProgress }
  /** `step` counts the steps of earlier phases too. */
  | { type: 'checkpoint'; runId: string; step: number }
  /** Something the user should know that does not stop the run (a damaged checkpoint skipped on resume). */
  | { type: 'warning'; runId: string; message: string };

export interface RunOutcome {
  runId: string;
  status: 'completed' | 'paused' | 'stopped';
  /** Optimizer steps done, over all phases. */
  step: number;
  totalSteps: number;
  finalTrainLoss: number | null;
  finalEvalLoss: number | null;
  /** The saved adapter (completed and stopped runs). */
  adapterId: string | null;
  /** Set when the run paused by itself: why, and what to do. */
  error: string | null;
  /** Why a run paused by itself: the GPU device was lost, or storage was too full for its checkpoint or progress. */
  pauseReason?: 'device-lost' | 'storage-full';
  /** Progressive runs: each phase's figures so far, and the forgetting report once phase 2 ended. */
  phases?: ProgressivePhaseSummary[];
  forgetting?: ForgettingReport | null;
}

/** A progressive run's outcome always carries its phases. */
export type ProgressiveOutcome = RunOutcome & { phases: ProgressivePhaseSummary[]; forgetting: ForgettingReport | null };

/** Progressive runs report through the same events as any run. */
export type ProgressiveEvent = RunEvent;

export interface GenerateRequest {
  prompt: string;
  /** null: the base model alone. */
  adapterId: string | null;
  maxNewTokens: number;
  /** 0: greedy. */
  temperature: number;
  /**
   * Multiplies the adapter's LoRA scaling for this call only (default 1); 0 switches the adapter
   * off, giving exactly the base model. The stored weights are never changed.
   */
  adapterScale?: number;
}

export interface GenerateResult {
  text: string;
  tokens: number;
  ms: number;
}

export interface ExportRequest {
  adapterId: string;
  format: ExportFormat;
  /** Merged folders only: each tensor in the base's own dtype, or all in f32. Default 'same'. */
  dtype?: 'same' | 'f32';
  /** Merged GGUF only: the type of its matrices. Default 'F16'. */
  ggufType?: MergedGgufType;
  /** What the Modelfile's FROM names: the Ollama model or path of the exact base. Default: the adapter's base model name. */
  ollamaBase?: string;
}

/** One file to download, with how to load it in Ollama. */
export type AdapterExport = AdapterDownload;

export interface EvaluateRequest {
  datasetId: string;
  /** The adapter evaluated against the base model; null: the base model alone. */
  adapterId: string | null;
  /** Longest generated answer for the rows with a Context: block. */
  maxNewTokens: number;
  /** 0: greedy answers. */
  temperature: number;
}

export interface ChatRequest {
  /** null: a new conversation. */
  conversationId: string | null;
  message: string;
  settings: ChatTurnSettings;
}

/** What a chat turn reports while it works; `reply` is the reply's position in the turn (0, or 1 for the adapter side by side). */
export type ChatEvent =
  /** Before the first token: the sources found, the system message and the rendered prompt. */
  | { type: 'turn'; conversationId: string; turn: ChatTurn }
  | { type: 'reply-start'; turnId: string; reply: number; adapterName: string | null; adapterScale: number }
  /** After each token: the reply so far. */
  | { type: 'token'; turnId: string; reply: number; text: string; tokens: number }
  | { type: 'reply'; turnId: string; reply: number; value: ChatReply };

export interface ChatResult {
  /** As stored, with the new turn last. */
  conversation: ConversationRecord;
  turnId: string;
}

export interface ReplyRef {
  conversationId: string;
  turnId: string;
  replyId: string;
}

export interface ChatDatasetRequest {
  /**
   * These conversations (every reply but those rated down and not corrected); null: the rated-up and
   * corrected replies of the whole log.
   */
  conversationIds: string[] | null;
  name: string;
}

export interface WebtuneEngineApi {
  /** Finds the GPU, runs a self-check and opens storage. Safe to call again (after a device loss). */
  init(): Promise<DeviceInfo>;
  /** `options.weights`: how the weight matrices are stored on the GPU (default 'auto': as in the checkpoint). */
  loadLocalModel(
    files: ModelFileEntry[],
    name: string,
    onProgress?: (message: string) => void,
    options?: ModelLoadOptions,
  ): Promise<ModelInfo>;
  loadHubModel(repoId: string, onProgress?: (progress: HubProgress) => void, options?: ModelLoadOptions): Promise<ModelInfo>;
  /** A model folder URL (https, or on the page's own origin), cached in IndexedDB like Hub models. */
  loadUrlModel(url: string, onProgress?: (progress: HubProgress) => void, options?: ModelLoadOptions): Promise<ModelInfo>;
  estimateMemory(settings: RunRequest['settings']): Promise<MemoryEstimate>;
  /** What loading this model and these datasets would download (files and sizes), or that the cache has them; nothing is downloaded. */
  planDownloads(request: DownloadPlanRequest): Promise<PlannedDownload[]>;
  /** Keeps a folder picked with showDirectoryPicker, to open it again after a reload (the handle only; permission is asked again). */
  rememberFolder(handle: FileSystemDirectoryHandle): Promise<void>;
  rememberedFolders(): Promise<RememberedFolder[]>;
  forgetFolder(name: string): Promise<void>;
  /** The Hub models, model folder URLs and datasets downloads keep in this browser, largest first. */
  cachedDownloads(): Promise<CachedDownload[]>;
  /** Frees a download's space (`null`: the interrupted downloads no record names); refused for the loaded model. */
  removeCachedDownload(id: string | null): Promise<void>;
  /** The browser's figures for this site's storage, where it gives them. */
  storageUsage(): Promise<StorageUsage | null>;

  /**
   * Reads a dataset file (JSONL line by line at any size; a JSON list or Parquet whole) into a
   * pending import and a preview: its rows are written as they are parsed, but no dataset exists
   * until `commitDataset`. `onProgress` hears about every ~100 ms of reading.
   */
  importDataset(name: string, file: Blob, fileName: string, onProgress?: (progress: ImportProgress) => void): Promise<DatasetPreview>;
  /** Cancels the imports being read: each stops at its next line, and nothing of it stays stored. */
  cancelDatasetImport(): Promise<void>;
  /**
   * The same for a dataset named by an https URL or a Hugging Face reference ("owner/name",
   * "owner/name:split", "owner/name/file.jsonl"), downloaded once and then read from IndexedDB.
   */
  importDatasetFrom(source: string, onProgress?: (progress: HubProgress) => void): Promise<DatasetPreview>;
  /** Makes the preview's rows a stored dataset (its summary is written in one transaction), under `name` when given. */
  commitDataset(previewId: string, name?: string): Promise<DatasetSummary>;
  /** Drops the preview and every row its import stored. */
  discardDataset(previewId: string): Promise<void>;
  listDatasets(): Promise<DatasetSummary[]>;
  deleteDataset(id: string): Promise<void>;
  /** Task analysis and training recommendation of a stored dataset. */
  analyzeDataset(datasetId: string): Promise<DatasetAnalysis>;
  /** presets/presets.json, checked field by field. */
  listPresets(): Promise<Preset[]>;
  /**
   * The settings an edited preset gives on a dataset, warmup capped to the run; an invalid preset is refused naming the field
   * (PresetError).
   */
  planPreset(request: PresetPlanRequest): Promise<PresetPlan>;
  /** What the quality filter removes from a stored dataset, rule by rule, with the removed rows. */
  previewFilter(datasetId: string, options: FilterOptions): Promise<FilterReport>;

  /** Resolves when the run completes, pauses or stops. */
  startRun(request: RunRequest, onEvent?: (event: RunEvent) => void): Promise<RunOutcome>;
  /** Continues a run from its latest checkpoint (same model, same data, same settings). */
  resumeRun(runId: string, onEvent?: (event: RunEvent) => void): Promise<RunOutcome>;
  /**
   * Two phases when the analysis recommends progressive training: the general tasks, then the most
   * specialised one from the phase-1 adapter, with the forgetting report. Paused, stopped, resumed
   * and guarded against a device loss like any run (`resumeRun` continues it in its phase).
   */
  startProgressiveRun(request: ProgressiveRunRequest, onEvent?: (event: ProgressiveEvent) => void): Promise<ProgressiveOutcome>;
  /** Take effect between optimizer steps; both save a checkpoint first. */
  pause(): Promise<void>;
  stop(): Promise<void>;
  listRuns(): Promise<RunRecord[]>;

  generate(request: GenerateRequest): Promise<GenerateResult>;
  /** Loss and perplexity of the base model and of base + adapter on a stored dataset, and RAG metrics of generated answers. */
  evaluate(request: EvaluateRequest, onProgress?: (progress: EvaluationProgress) => void): Promise<EvaluationReport>;

  /** The documents chat answers from, in the order they were added. */
  listDocuments(): Promise<DocumentRecord[]>;
  /** Splits and indexes a .txt, .md or .html file and stores it; other types (PDF among them) are refused with a DocumentError. */
  addDocument(file: Blob, fileName: string): Promise<DocumentRecord>;
  removeDocument(name: string): Promise<void>;
  /** One chat turn, streamed through `onEvent`, stored when its replies are done; resolves when they are (or were stopped). */
  chat(request: ChatRequest, onEvent?: (event: ChatEvent) => void): Promise<ChatResult>;
  /** Ends the chat generation in progress before its next token. */
  stopGeneration(): Promise<void>;
  /** Summaries of the stored conversations matching `query`, most recently changed first. */
  listConversations(query?: ConversationQuery): Promise<ConversationSummary[]>;
  getConversation(id: string): Promise<ConversationRecord>;
  deleteConversation(id: string): Promise<void>;
  /** null clears the rating. */
  rateReply(ref: ReplyRef, rating: Rating | null): Promise<ConversationRecord>;
  /** The answer the reply should have been; the generated text is kept. null removes the correction. */
  correctReply(ref: ReplyRef, correction: string | null): Promise<ConversationRecord>;
  /** Of two replies side by side, the one the conversation goes on from. */
  chooseReply(ref: ReplyRef): Promise<ConversationRecord>;
  /** Training rows in the messages format from the log, corrected answers in place of the generated ones, as a new dataset. */
  addConversationsToDataset(request: ChatDatasetRequest): Promise<DatasetSummary>;
  /** The log as JSONL, one conversation per line (null: all of them). */
  exportConversations(ids: string[] | null): Promise<string>;
  /** What the citation enhancement would change in a stored dataset, row by row; nothing is changed. */
  previewEnhancement(datasetId: string): Promise<EnhancementReport>;
  /** Stores the enhanced rows as a new dataset (the original stays as it is). */
  applyEnhancement(datasetId: string, name?: string): Promise<DatasetSummary>;

  listAdapters(): Promise<AdapterSummary[]>;
  renameAdapter(id: string, name: string): Promise<void>;
  deleteAdapter(id: string): Promise<void>;
  /** The adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors) in a zip. */
  exportAdapterZip(id: string): Promise<Uint8Array>;
  /**
   * Adds a PEFT LoRA adapter (from webtune or Python PEFT) to the library: picked files of its
   * folder, or a zip of it. It must fit the loaded model exactly; otherwise an AdapterImportError
   * says what is wrong and nothing is stored. `name` defaults to the folder or zip name.
   */
  importAdapter(source: ModelFileEntry[] | Blob, name?: string): Promise<AdapterSummary>;
  /** The adapter as a PEFT zip, a GGUF LoRA file or a merged model folder in a zip, with its Ollama setup. */
  exportAdapter(request: ExportRequest): Promise<AdapterExport>;
}

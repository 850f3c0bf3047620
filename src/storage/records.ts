/** Shapes of the records kept in IndexedDB. Every field must survive structured cloning. */

import type { FilterOptions } from '../analysis/filter';
import type { DatasetRow } from '../data/types';
import type { LoraConfig } from '../lora/config';
import type { ForgettingReport, PhaseOutcome } from '../train/progressive';

export interface DatasetRecord {
  id: string;
  name: string;
  createdAt: number;
  format: string;
  rowCount: number;
  rows: DatasetRow[];
  invalidLineCount: number;
  sourceFileName: string;
  /** Where a downloaded dataset came from (`url:<URL>` or `hub:<reference>`), so a share link can name it; absent for files. */
  source?: string;
}

export type DatasetSummary = Omit<DatasetRecord, 'rows'>;

/**
 * What the `datasets` store holds. From version 3 a dataset is a summary with the number of its row
 * chunks (`datasetChunks`), written after all of them, so a dataset whose chunks are not all
 * written is never listed. Version 2 kept the rows in the record itself; such records are read as
 * they are (they have no checksum).
 */
export type StoredDataset = DatasetSummary & ({ chunks: number; rows?: undefined } | { rows: DatasetRow[]; chunks?: undefined });

/** Rows `first` … `first + rows - 1` of a dataset, as JSON text (an array of DatasetRow), with the SHA-256 of that text. */
export interface DatasetChunkRecord {
  datasetId: string;
  index: number;
  rows: number;
  json: string;
  checksum: string;
}

/** An import whose chunks are being written or wait for the user's confirmation; removed when it is committed or discarded. */
export interface PendingImportRecord {
  id: string;
  createdAt: number;
  fileName: string;
}

export interface RunSettings {
  lora: LoraConfig;
  training: Record<string, number | string | boolean | null>;
}

export type RunStatus = 'created' | 'running' | 'paused' | 'stopped' | 'completed' | 'failed';

export interface RunModel {
  /** Hub id (`org/name`), the local folder name, or a folder URL's last path segment. */
  id: string;
  source: 'hub' | 'local' | 'url';
  architecture: string;
  parameterCount: number;
}

export interface HistoryPoint {
  /** Optimizer steps since the run began (over all phases of a progressive run). */
  step: number;
  /** The phase of a progressive run (1 or 2); absent for one-phase runs. */
  phase?: number;
  epoch: number;
  loss?: number;
  evalLoss?: number;
  lr: number;
  tokensPerSecond?: number;
  elapsedMs: number;
}

export interface RunRecord {
  id: string;
  createdAt: number;
  updatedAt: number;
  name: string;
  model: RunModel;
  datasetId: string;
  evalDatasetId: string | null;
  settings: RunSettings;
  status: RunStatus;
  error: string | null;
  totalSteps: number;
  step: number;
  history: HistoryPoint[];
  lastCheckpointStep: number | null;
  /** Quality filter applied to the training rows; absent on runs from before the filter existed. */
  filter?: FilterOptions | null;
  /** 'progressive': two phases, phase 2 continuing phase 1's adapter. Absent on older runs: 'single'. */
  kind?: 'single' | 'progressive';
  /** Progressive runs: each phase's plan and, once known, its figures. */
  phases?: RunPhaseRecord[];
  /** Progressive runs: the phase-1 eval loss after phase 1 and after phase 2, once phase 2 ends. */
  forgetting?: ForgettingReport | null;
}

export interface RunPhaseRecord {
  phase: 1 | 2;
  tasks: string[];
  rows: number;
  /** Optimizer steps planned; the phase's checkpoints and history points are stored after those of the phases before it. */
  steps: number;
  /** Measured when the phase began, so a resume does not measure it again. */
  evalLossBefore?: number | null;
  /** Set when the phase has finished. */
  outcome?: PhaseOutcome;
}

/** `updatedAt` is left out because every update sets it. */
export type RunPatch = Partial<Omit<RunRecord, 'id' | 'createdAt' | 'updatedAt'>>;

export interface DataCursor {
  epoch: number;
  batchIndex: number;
  /** Shuffled row order of the current epoch, so a resumed run sees the same batches. */
  order: number[];
}

export interface CheckpointRecord {
  runId: string;
  step: number;
  createdAt: number;
  params: Float32Array;
  /** AdamW first and second moments, laid out like `params`. */
  m: Float32Array;
  v: Float32Array;
  optimizerStep: number;
  /** The phase of a progressive run it belongs to; `step` counts the steps of earlier phases too. */
  phase?: number;
  dataCursor: DataCursor;
  rngSeed: number;
}

/** SHA-256 of each tensor's bytes; absent on checkpoints written before version 3. */
export interface TensorChecksums {
  params: string;
  m: string;
  v: string;
}

export type StoredCheckpoint = CheckpointRecord & { checksums?: TensorChecksums };

export interface AdapterTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Where an imported adapter came from; trained adapters have none. */
export interface AdapterProvenance {
  /** The zip or folder name it was imported from. */
  from: string;
  /** `base_model_name_or_path` of its adapter_config.json, as the training tool wrote it. */
  declaredBaseModel: string | null;
}

export interface AdapterRecord {
  id: string;
  name: string;
  createdAt: number;
  imported?: AdapterProvenance;
  /** Null once the run that trained it has been deleted. */
  runId: string | null;
  baseModel: string;
  datasetName: string;
  settings: RunSettings;
  finalTrainLoss: number | null;
  finalEvalLoss: number | null;
  config: LoraConfig;
  tensors: AdapterTensor[];
}

export type AdapterSummary = Omit<AdapterRecord, 'tensors'>;

/** Each tensor with the SHA-256 of its bytes; absent on adapters written before version 3. */
export type StoredAdapter = Omit<AdapterRecord, 'tensors'> & { tensors: (AdapterTensor & { checksum?: string })[] };

/**
 * A downloaded file or a chunk of one (download-store.ts), or a remembered local folder. Without
 * `chunks`, `opfs`, `chunkOf` or `directory`, the blob is the whole file (datasets, and model files
 * stored before downloads were chunked).
 */
export interface ModelFileRecord {
  modelId: string;
  path: string;
  revision: string;
  size: number;
  blob: Blob;
  /** A finished download whose bytes are the `chunks` records with `chunkOf` = path; the blob is empty. */
  chunks?: number;
  /** A finished download kept in the Origin Private File System; the blob is empty. */
  opfs?: true;
  /** The file's sha256 (hex), checked against the Hub's listing when it gave one. */
  sha256?: string;
  /** Chunk number `chunk` (from 0) of the download of `chunkOf`, finished or not. */
  chunkOf?: string;
  chunk?: number;
  /** A local folder picked with the File System Access API, kept to open it again (folder-handles.ts). */
  directory?: FileSystemDirectoryHandle;
}

export interface CachedModelSummary {
  modelId: string;
  revision: string;
  fileCount: number;
  /** Bytes over all cached files of the model. */
  size: number;
}

export interface StorageUsage {
  usage: number;
  quota: number;
}

/** What one chat turn was generated with; kept on every turn, since the settings can change between turns. */
export interface ChatTurnSettings {
  /** The adapter of the reply (side by side: of the second reply); null: the base model alone. */
  adapterId: string | null;
  /** Multiplies the adapter's LoRA scaling (1: as trained, 0: off, exactly the base model). */
  adapterScale: number;
  /** 0: greedy. */
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** Put before the retrieved sources in the system message; '' for none. */
  systemPrompt: string;
  /** Search the stored documents with the user's message and give the top passages as numbered sources. */
  useDocuments: boolean;
  /** How many passages at most. */
  topK: number;
  /** Two replies to the same prompt: the base model first, then with the adapter. */
  sideBySide: boolean;
}

/** A numbered source given to the model in a turn's system message. */
export interface ChatSource {
  /** The `[n]` the model cites. */
  id: number;
  label: string | null;
  text: string;
  passageId: string;
  document: string;
  /** BM25 score of the passage for the user's message. */
  score: number;
}

export type Rating = 'up' | 'down';

/** Which given sources a reply cited (src/rag/context.ts, checkCitations). */
export interface ReplyCitations {
  cited: number[];
  valid: number[];
  missing: number[];
  uncited: number[];
}

export interface ChatReply {
  id: string;
  createdAt: number;
  /** Null: the base model. */
  adapterId: string | null;
  adapterName: string | null;
  /** 0 when the adapter was switched off. */
  adapterScale: number;
  /** The reply as generated; kept when it is corrected. */
  text: string;
  tokens: number;
  ms: number;
  /** The user stopped it before the model ended it. */
  stopped: boolean;
  /** Sampling seed (unused at temperature 0), so a sampled reply can be generated again. */
  seed: number;
  rating: Rating | null;
  /** The answer it should have been, as the user wrote it; null until corrected. */
  correction: string | null;
  /** Of the answer in use: the correction when there is one, else the generated text. */
  citations: ReplyCitations;
}

export interface ChatTurn {
  id: string;
  createdAt: number;
  user: string;
  /** The system message of this turn (system prompt and numbered sources); null when it had none. */
  system: string | null;
  sources: ChatSource[];
  /** The text the model continued: the conversation rendered with its chat template and generation prompt. */
  prompt: string;
  settings: ChatTurnSettings;
  /** One reply, or two side by side (base first). */
  replies: ChatReply[];
  /** The reply later turns build on (its correction when corrected). */
  chosen: number;
}

export interface ConversationRecord {
  id: string;
  /** The first user message, shortened. */
  title: string;
  createdAt: number;
  updatedAt: number;
  /** The base model's name (Hub id or folder name). */
  model: string;
  turns: ChatTurn[];
}

/** A document added for chat over documents; its passages live in the stored index. */
export interface DocumentRecord {
  /** The file name, unique among the stored documents. */
  name: string;
  format: string;
  addedAt: number;
  /** Characters of text read from it. */
  chars: number;
  passages: number;
}

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

export interface ModelFileRecord {
  modelId: string;
  path: string;
  revision: string;
  size: number;
  blob: Blob;
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

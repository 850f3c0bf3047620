/** Shapes of the records kept in IndexedDB. Every field must survive structured cloning. */

import type { FilterOptions } from '../analysis/filter';
import type { DatasetRow } from '../data/types';
import type { LoraConfig } from '../lora/config';

export interface DatasetRecord {
  id: string;
  name: string;
  createdAt: number;
  format: string;
  rowCount: number;
  rows: DatasetRow[];
  invalidLineCount: number;
  sourceFileName: string;
}

export type DatasetSummary = Omit<DatasetRecord, 'rows'>;

export interface RunSettings {
  lora: LoraConfig;
  training: Record<string, number | string | boolean | null>;
}

export type RunStatus = 'created' | 'running' | 'paused' | 'stopped' | 'completed' | 'failed';

export interface RunModel {
  /** Hub id (`org/name`) or the local folder name. */
  id: string;
  source: 'hub' | 'local';
  architecture: string;
  parameterCount: number;
}

export interface HistoryPoint {
  step: number;
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

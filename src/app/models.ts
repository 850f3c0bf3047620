/**
 * The loaded base model: its files, config and tokenizer, and its weights on the current device.
 * Loading another model frees the previous one's weights and workspace first; a device loss drops
 * the GPU copy, which is uploaded again when next needed.
 */
import { chatTemplateFromConfig } from '../data/chat-template';
import type { PrepTokenizer } from '../data/prepare';
import type { FileSource } from '../model/file-source';
import { filesFromList } from '../model/file-source';
import { LlamaModel } from '../model/llama';
import { expectedTensorShapes, type OpenedModel, openModel } from '../model/weights';
import type { WebtuneDb } from '../storage/db';
import { prepTokenizerFor } from '../train/pipeline';
import { isWeightPrecision, WEIGHT_PRECISIONS, type WeightPrecision } from '../model/weight-format';
import type { HubProgress, ModelFileEntry, ModelInfo, ModelLoadOptions } from './api';
import type { DeviceSession } from './device';
import { EngineStateError } from './errors';
import { hubFileSource } from './hub';

export interface LoadedModel {
  info: ModelInfo;
  /** Kept for merged exports, which read the base weights again tensor by tensor. */
  source: FileSource;
  opened: OpenedModel;
  prep: PrepTokenizer;
  /** How the weights go to the GPU, again after a device loss. */
  precision: WeightPrecision;
}

export class ModelSession {
  #model: LoadedModel | null = null;
  /** Null until uploaded to the current device (again after a device loss). */
  #llama: LlamaModel | null = null;
  readonly #onRelease: (() => void)[] = [];

  constructor(
    private readonly device: DeviceSession,
    private readonly storage: () => Promise<WebtuneDb>,
  ) {
    device.onReplaced(() => {
      this.#llama = null;
    });
  }

  /** `listener` runs before the loaded model goes (another model replaces it). */
  onRelease(listener: () => void): void {
    this.#onRelease.push(listener);
  }

  /** A folder picked in the browser; paths travel beside the files, which lose webkitRelativePath in a worker. */
  loadLocal(
    files: ModelFileEntry[],
    name: string,
    onProgress?: (message: string) => void,
    options: ModelLoadOptions = {},
  ): Promise<ModelInfo> {
    const source = filesFromList(new Map(files.map((f) => [f.path, f.file])), name);
    return this.#load(source, name, 'local', options, onProgress);
  }

  async loadHub(repoId: string, onProgress?: (progress: HubProgress) => void, options: ModelLoadOptions = {}): Promise<ModelInfo> {
    const id = repoId.trim();
    return this.#load(await hubFileSource(await this.storage(), id, onProgress), id, 'hub', options);
  }

  current(): LoadedModel {
    if (!this.#model) throw new EngineStateError('No model is loaded yet; pick a model folder or a Hugging Face model first.');
    return this.#model;
  }

  get loaded(): LoadedModel | null {
    return this.#model;
  }

  /** The loaded model's weights on the current device, uploaded first when needed. */
  async llama(onProgress?: (message: string) => void): Promise<LlamaModel> {
    const model = this.current();
    const gpu = await this.device.gpu();
    this.#llama ??= await LlamaModel.load(gpu, model.opened.weights, {
      precision: model.precision,
      onProgress: (done, total) => onProgress?.(`Uploading weights to the GPU: ${done} of ${total} parts`),
    });
    model.info.weightPrecision = this.#llama.precision;
    model.info.weightBytes = this.#llama.weights.bytes;
    return this.#llama;
  }

  /** Frees the model's GPU memory (weights, workspace, adapters cached for it) and forgets it. */
  release(): void {
    for (const listener of this.#onRelease) listener();
    this.#llama?.destroy();
    this.#llama = null;
    this.#model = null;
  }

  async #load(
    source: FileSource,
    name: string,
    origin: 'hub' | 'local',
    options: ModelLoadOptions,
    onProgress?: (message: string) => void,
  ): Promise<ModelInfo> {
    const precision = options.weights ?? 'auto';
    if (!isWeightPrecision(precision)) {
      throw new EngineStateError(`Weight precision "${String(precision)}" is not one of ${WEIGHT_PRECISIONS.join(', ')}.`);
    }
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
      weightPrecision: 'f32',
      tokenizerOk: prep.tokenizer.encode('Hello world').length > 0,
      chatTemplate: chatTemplateFromConfig(opened.tokenizerConfig) !== null,
    };
    this.release();
    this.#model = { info, source, opened, prep, precision };
    await this.llama(onProgress);
    return { ...info };
  }
}

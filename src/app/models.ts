/**
 * The loaded base model: its files, config and tokenizer, and its weights on the current device.
 * Loading another model frees the previous one's weights and workspace first; a device loss drops
 * the GPU copy, which is uploaded again when next needed.
 */
import { chatTemplateFromConfig } from '../data/chat-template';
import type { PrepTokenizer } from '../data/prepare';
import type { FileSource } from '../model/file-source';
import { LlamaModel } from '../model/llama';
import { type OpenedFiles, openModelFiles } from '../model/open-files';
import { expectedTensorShapes, type OpenedModel, openModel } from '../model/weights';
import type { WebtuneDb } from '../storage/db';
import { prepTokenizerFor } from '../train/pipeline';
import { isWeightPrecision, WEIGHT_PRECISIONS, type WeightPrecision } from '../model/weight-format';
import type { HubProgress, ModelFileEntry, ModelInfo, ModelLoadOptions } from './api';
import type { DeviceSession } from './device';
import { EngineStateError } from './errors';
import { hubFileSource, modelFolderName, modelFolderUrl, urlFileSource, urlModelCacheId } from './hub';

export interface LoadedModel {
  info: ModelInfo;
  /** A Hugging Face folder, kept for merged exports, which read its files again; null for a GGUF base. */
  source: FileSource | null;
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

  /**
   * A folder picked in the browser, or a GGUF file (an Ollama blob, the shards of a split file), told
   * apart by content; paths travel beside the files, which lose webkitRelativePath in a worker.
   * `options.weights`: how the weight matrices are stored on the GPU (default 'auto': as in the checkpoint).
   */
  loadLocal(
    files: ModelFileEntry[],
    name: string,
    onProgress?: (message: string) => void,
    options: ModelLoadOptions = {},
  ): Promise<ModelInfo> {
    onProgress?.('Reading the model files: config and tokenizer, safetensors or GGUF headers…');
    return this.#load(() => openModelFiles(new Map(files.map((f) => [f.path, f.file])), name), name, 'local', options, onProgress);
  }

  async loadHub(repoId: string, onProgress?: (progress: HubProgress) => void, options: ModelLoadOptions = {}): Promise<ModelInfo> {
    const id = repoId.trim();
    const source = await hubFileSource(await this.storage(), id, onProgress);
    return this.#load(async () => ({ opened: await openModel(source), source }), id, 'hub', options);
  }

  /** A model folder on a web server (the site's demo, a static host); named after its last path segment. */
  async loadUrl(url: string, onProgress?: (progress: HubProgress) => void, options: ModelLoadOptions = {}): Promise<ModelInfo> {
    const origin = globalThis.location?.origin ?? '';
    const folder = modelFolderUrl(url.trim(), origin);
    const source = await urlFileSource(await this.storage(), folder.href, origin, onProgress);
    const open = async () => ({ opened: await openModel(source), source });
    return this.#load(open, modelFolderName(folder), 'url', options, undefined, folder.href);
  }

  /** The loaded model's download in the cache (cached-downloads.ts), which its merged exports read again; null for local files. */
  cacheId(): string | null {
    const info = this.#model?.info;
    if (info?.source === 'hub') return info.name;
    if (info?.source === 'url' && info.url) return urlModelCacheId(new URL(info.url));
    return null;
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
    open: () => Promise<OpenedFiles>,
    name: string,
    origin: ModelInfo['source'],
    options: ModelLoadOptions,
    onProgress?: (message: string) => void,
    url?: string,
  ): Promise<ModelInfo> {
    const precision = options.weights ?? 'auto';
    if (!isWeightPrecision(precision)) {
      throw new EngineStateError(`Weight precision "${String(precision)}" is not one of ${WEIGHT_PRECISIONS.join(', ')}.`);
    }
    const { opened, source } = await open();
    const prep = prepTokenizerFor(opened);
    const { config } = opened;
    let parameterCount = 0;
    for (const shape of expectedTensorShapes(config).values()) parameterCount += shape.reduce((a, b) => a * b, 1);
    const info: ModelInfo = {
      name,
      source: origin,
      ...(url ? { url } : {}),
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
      format: opened.gguf ? 'gguf' : 'hf',
      quantization: opened.gguf?.quantization ?? null,
      fileBytes: opened.gguf?.fileBytes ?? null,
      weightPrecision: 'f32',
      tokenizerOk: prep.tokenizer.encode('Hello world').length > 0,
      tokenizerSource: opened.gguf?.tokenizer.source ?? 'tokenizer.json',
      tokenizerProblems: opened.gguf?.tokenizer.problems ?? [],
      chatTemplate: chatTemplateFromConfig(opened.tokenizerConfig) !== null,
    };
    this.release();
    this.#model = { info, source, opened, prep, precision };
    await this.llama(onProgress);
    return { ...info };
  }
}

/**
 * Opens a Hugging Face model folder: config.json, tokenizer files and safetensors weights (one
 * file or shards with an index). Every shard header is validated and every tensor the
 * architecture needs is checked for presence, shape and dtype before any weight is read, so a
 * wrong or incomplete download fails in a second instead of after minutes of uploading.
 */
import type { GgufFile } from '../gguf/file';
import { type ModelConfig, parseModelConfig } from './config';
import { MissingFileError, MissingTensorError, ModelLoadError, TensorShapeError, UnsupportedModelError } from './errors';
import type { FileSource } from './file-source';
import type { BlockFormat, CheckpointDtype, RawTensor } from './weight-format';
import {
  CONVERTIBLE_DTYPES,
  readSafetensorsHeader,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  tensorToFloat32,
} from './safetensors';

export interface ModelWeightsSource {
  config: ModelConfig;
  /** The safetensors files the weights come from. */
  files: string[];
  /** Reads one tensor (only its byte range) as f32, after checking it has `expectedShape`. */
  tensor(name: string, expectedShape: number[]): Promise<Float32Array>;
  /**
   * Reads one tensor's bytes as the file stores them, with their dtype (F32, F16 or BF16), after
   * the same checks: what the GPU upload uses, so a 16-bit tensor is never widened on the way.
   * With `rows` [start, end), only those rows of the first dimension (one vocabulary piece).
   */
  raw(name: string, expectedShape: number[], rows?: [number, number]): Promise<RawTensor>;
  /** How the checkpoint stores a tensor (from the headers; nothing is read). */
  dtype(name: string): CheckpointDtype;
  /**
   * GGUF bases only: the block format a quantized tensor keeps on the GPU under precision 'auto'
   * (src/gguf/block-formats.ts), or null where it is a float or has no GPU decoder. Absent: none does.
   */
  blockFormat?(name: string): BlockFormat | null;
  /** The blocks of a tensor whose blockFormat is not null, as stored (rows [start, end) only, when given). */
  blocks?(name: string, expectedShape: number[], rows?: [number, number]): Promise<Uint8Array>;
}

export interface OpenedModel {
  config: ModelConfig;
  weights: ModelWeightsSource;
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  /** Present when the model is a GGUF file (gguf/base.ts) rather than a Hugging Face folder. */
  gguf?: GgufBaseDetails;
}

/** What a GGUF base adds: the file, its quantization mix and size, and where its tokenizer came from. */
export interface GgufBaseDetails {
  file: GgufFile;
  /** Per ggml type over every tensor of the file, largest share first. */
  quantization: { type: string; tensors: number; bytes: number }[];
  fileBytes: number;
  /** general.name, when the file has one. */
  modelName: string | null;
  tokenizer: {
    /** Built from the file's tokenizer.ggml.* metadata, or the model's own tokenizer.json added by the user. */
    source: 'gguf' | 'tokenizer.json';
    kind?: 'llama' | 'gpt2';
    /** Why webtune's tokenization may differ from llama.cpp's; empty when it is reproduced exactly. */
    problems: string[];
  };
}

const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

/** Every tensor the forward pass reads, with its shape in the Hugging Face layout ([out, in] for linears). */
export function expectedTensorShapes(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize: c, intermediateSize: inter, numHeads, numKvHeads, headDim, vocabSize } = config;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const shapes = new Map<string, number[]>([['model.embed_tokens.weight', [vocabSize, c]]]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [c]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [q, c]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kv, c]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kv, c]);
    if (config.qkvBias) {
      shapes.set(`${p}.self_attn.q_proj.bias`, [q]);
      shapes.set(`${p}.self_attn.k_proj.bias`, [kv]);
      shapes.set(`${p}.self_attn.v_proj.bias`, [kv]);
    }
    shapes.set(`${p}.self_attn.o_proj.weight`, [c, q]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [c]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [inter, c]);
    shapes.set(`${p}.mlp.up_proj.weight`, [inter, c]);
    shapes.set(`${p}.mlp.down_proj.weight`, [c, inter]);
  }
  shapes.set('model.norm.weight', [c]);
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [vocabSize, c]);
  return shapes;
}

async function readJson(source: FileSource, path: string): Promise<unknown> {
  const text = new TextDecoder().decode(await source.read(path));
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`${path} in ${source.description} is not valid JSON (${(err as Error).message}); download it again.`);
  }
}

async function requireJson(source: FileSource, path: string, neededFor: string): Promise<unknown> {
  if (!(await source.has(path))) throw new MissingFileError(path, neededFor, source.description);
  return readJson(source, path);
}

interface Location {
  header: SafetensorsHeader;
  info: SafetensorsTensorInfo;
}

/** Maps each tensor name to the shard that holds it, per the index's weight_map. */
async function readIndex(source: FileSource): Promise<Map<string, string>> {
  const index = await readJson(source, INDEX_FILE);
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelLoadError(`${INDEX_FILE} in ${source.description} has no "weight_map" object; download it again.`);
  }
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file === '') {
      throw new ModelLoadError(`${INDEX_FILE}: weight_map entry for "${name}" is ${JSON.stringify(file)}, not a file name.`);
    }
    map.set(name, file);
  }
  return map;
}

async function locateTensors(source: FileSource): Promise<{ files: string[]; locations: Map<string, Location>; listedIn: string }> {
  const weightsNeededFor =
    `the model weights (webtune reads ${SINGLE_FILE}, or ${INDEX_FILE} with its shards; ` +
    'PyTorch .bin files must be converted to safetensors first)';
  const locations = new Map<string, Location>();
  if (await source.has(SINGLE_FILE)) {
    const header = await readSafetensorsHeader(source, SINGLE_FILE);
    for (const info of header.tensors.values()) locations.set(info.name, { header, info });
    return { files: [SINGLE_FILE], locations, listedIn: SINGLE_FILE };
  }
  if (!(await source.has(INDEX_FILE))) throw new MissingFileError(SINGLE_FILE, weightsNeededFor, source.description);

  const weightMap = await readIndex(source);
  const files = [...new Set(weightMap.values())].sort();
  const headers = new Map<string, SafetensorsHeader>();
  for (const file of files) {
    if (!(await source.has(file))) throw new MissingFileError(file, `the weights that ${INDEX_FILE} assigns to it`, source.description);
    headers.set(file, await readSafetensorsHeader(source, file));
  }
  for (const [name, file] of weightMap) {
    const header = headers.get(file)!;
    const info = header.tensors.get(name);
    if (!info) throw new MissingTensorError(file, name, `${INDEX_FILE} says this file holds it`);
    locations.set(name, { header, info });
  }
  return { files, locations, listedIn: INDEX_FILE };
}

function checkTensor(location: Location | undefined, listedIn: string, name: string, expectedShape: readonly number[]): Location {
  if (!location) throw new MissingTensorError(listedIn, name);
  const { header, info } = location;
  if (info.shape.length !== expectedShape.length || info.shape.some((d, i) => d !== expectedShape[i])) {
    throw new TensorShapeError(header.file, name, expectedShape, info.shape);
  }
  if (!CONVERTIBLE_DTYPES.includes(info.dtype)) {
    throw new UnsupportedModelError(
      header.file,
      info.dtype,
      `tensor "${name}" is stored as ${info.dtype}`,
      'F32, F16 and BF16 weights (quantized checkpoints must be de-quantized first)',
    );
  }
  return location;
}

/** Byte range (relative to the data section) of rows [start, end) of a tensor's first dimension; the whole tensor without `rows`. */
export function rowRange(info: SafetensorsTensorInfo, rows?: [number, number]): [number, number] {
  if (!rows) return [info.begin, info.end];
  const [start, end] = rows;
  const rowBytes = (info.end - info.begin) / info.shape[0];
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= info.shape[0])) {
    throw new RangeError(`rows [${start}, ${end}) are not within the ${info.shape[0]} rows of "${info.name}"`);
  }
  return [info.begin + start * rowBytes, info.begin + end * rowBytes];
}

export async function openModel(source: FileSource): Promise<OpenedModel> {
  const config = parseModelConfig(await requireJson(source, 'config.json', 'the model architecture and sizes'), 'config.json');
  const tokenizerJson = await requireJson(source, 'tokenizer.json', 'turning text into tokens');
  let tokenizerConfig: Record<string, unknown> = {};
  if (await source.has('tokenizer_config.json')) {
    const parsed = await readJson(source, 'tokenizer_config.json');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ModelLoadError(`tokenizer_config.json in ${source.description} is not a JSON object; download it again.`);
    }
    tokenizerConfig = parsed as Record<string, unknown>;
  }

  const { files, locations, listedIn } = await locateTensors(source);
  for (const [name, shape] of expectedTensorShapes(config)) checkTensor(locations.get(name), listedIn, name, shape);

  const weights: ModelWeightsSource = {
    config,
    files,
    async tensor(name, expectedShape) {
      const { header, info } = checkTensor(locations.get(name), listedIn, name, expectedShape);
      const bytes = await source.read(header.file, header.dataStart + info.begin, header.dataStart + info.end);
      return tensorToFloat32(bytes, info.dtype, header.file, name);
    },
    dtype(name) {
      const location = locations.get(name);
      if (!location) throw new MissingTensorError(listedIn, name);
      return location.info.dtype as CheckpointDtype;
    },
    async raw(name, expectedShape, rows) {
      const { header, info } = checkTensor(locations.get(name), listedIn, name, expectedShape);
      const [begin, end] = rowRange(info, rows);
      const bytes = await source.read(header.file, header.dataStart + begin, header.dataStart + end);
      return { dtype: info.dtype as CheckpointDtype, bytes, file: header.file };
    },
  };
  return { config, weights, tokenizerJson, tokenizerConfig };
}

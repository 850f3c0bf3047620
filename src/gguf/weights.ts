/**
 * A GGUF base model as the engine's ModelWeightsSource: tensors asked for by their Hugging Face
 * names and shapes, read one at a time from the file (or shards), dequantized to f32 (or, through
 * `blocks`, left in their block format for the GPU: block-formats.ts) and, for the llama
 * architecture, with q/k rows put back into the half-split layout (see rotary.ts).
 * Every tensor the architecture needs is checked for presence, shape and type when the model is
 * opened, before any weight is read, as model/weights.ts does for safetensors.
 */
import type { ModelConfig } from '../model/config';
import { MissingTensorError, TensorShapeError, UnsupportedModelError } from '../model/errors';
import { expectedTensorShapes, type ModelWeightsSource } from '../model/weights';
import type { CheckpointDtype } from '../model/weight-format';
import type { ByteSource } from './byte-source';
import { ggufModelConfig } from './config';
import { type GgufFile, type GgufTensor, openGguf } from './file';
import { type GgmlTypeName, isSupportedGgmlType, SUPPORTED_GGML_TYPES } from './ggml-types';
import { gpuBlockFormat } from './block-formats';
import { ggufTensorName } from './names';
import { dequantize } from './quants';
import { toHalfSplit } from './rotary';

/** A tensor as stored (possibly quantized), in the Hugging Face row order. */
export interface StoredTensor {
  type: GgmlTypeName;
  /** Hugging Face shape ([out, in] for linears). */
  shape: number[];
  /** Row-major rows of `shape[shape.length - 1]` values, each a whole number of blocks of `type`. */
  bytes: Uint8Array;
}

export interface GgufWeightsSource extends ModelWeightsSource {
  /** The tensor's bytes as stored, q/k rows unpermuted, for kernels that dequantize on the GPU. */
  stored(name: string, expectedShape: number[]): Promise<StoredTensor>;
  /** The GGUF type of each tensor the forward pass reads, by Hugging Face name. */
  types: Map<string, GgmlTypeName>;
}

export interface OpenedGgufModel {
  config: ModelConfig;
  weights: GgufWeightsSource;
  file: GgufFile;
}

/** Where a GGUF model's sizes come from, for the loader's errors. */
const GGUF_METADATA = "the file's own metadata (general.architecture and its sizes)";

const SUPPORTED = `GGUF tensors stored as ${SUPPORTED_GGML_TYPES.join(', ')}`;

/** The rotary head count whose rows a llama file permuted, or null when the tensor is stored as in HF. */
function permutedHeads(config: ModelConfig, hfName: string): number | null {
  if (config.architecture !== 'llama') return null;
  if (/\.self_attn\.q_proj\.weight$/.test(hfName)) return config.numHeads;
  if (/\.self_attn\.k_proj\.weight$/.test(hfName)) return config.numKvHeads;
  return null;
}

function locate(file: GgufFile, hfName: string, expectedShape: readonly number[]): GgufTensor & { typeName: GgmlTypeName } {
  const name = ggufTensorName(hfName);
  const tensor = name === null ? undefined : file.tensors.get(name);
  if (!tensor) throw new MissingTensorError(file.name, name ?? hfName, `the Hugging Face tensor ${hfName}`, GGUF_METADATA);
  const shape = [...tensor.dims].reverse();
  if (shape.length !== expectedShape.length || shape.some((d, i) => d !== expectedShape[i])) {
    throw new TensorShapeError(file.name, tensor.name, expectedShape, shape, GGUF_METADATA);
  }
  if (!isSupportedGgmlType(tensor.type.name)) {
    throw new UnsupportedModelError(file.name, tensor.type.name, `tensor "${tensor.name}" is stored as ${tensor.type.name}`, SUPPORTED);
  }
  return { ...tensor, typeName: tensor.type.name };
}

export function ggufWeightsSource(file: GgufFile, config: ModelConfig): GgufWeightsSource {
  const types = new Map<string, GgmlTypeName>();
  for (const [name, shape] of expectedTensorShapes(config)) types.set(name, locate(file, name, shape).typeName);

  const stored = async (name: string, expectedShape: number[]): Promise<StoredTensor> => {
    const tensor = locate(file, name, expectedShape);
    let bytes = await file.readTensorBytes(tensor);
    const heads = permutedHeads(config, name);
    if (heads !== null) bytes = toHalfSplit(bytes, expectedShape[0], heads);
    return { type: tensor.typeName, shape: expectedShape, bytes };
  };

  const tensor = async (name: string, expectedShape: number[]): Promise<Float32Array> => {
    const t = locate(file, name, expectedShape);
    const values = dequantize(t.typeName, await file.readTensorBytes(t), t.elements);
    const heads = permutedHeads(config, name);
    return heads === null ? values : toHalfSplit(values, expectedShape[0], heads);
  };
  // F32, F16 and BF16 tensors reach the GPU as the file stores them; through `raw`, block formats as
  // the f32 values of their blocks (exactly the file's weights, dequantized here), through `blocks` as stored.
  const dtype = (name: string): CheckpointDtype => {
    const type = types.get(name);
    return type === 'F16' || type === 'BF16' ? type : 'F32';
  };
  const rowRange = (bytes: Uint8Array, rowCount: number, rows?: [number, number]) => {
    if (!rows) return bytes;
    const rowBytes = bytes.byteLength / rowCount;
    return bytes.subarray(rows[0] * rowBytes, rows[1] * rowBytes);
  };
  const blockFormat = (name: string) => {
    const type = types.get(name);
    return type === undefined ? null : gpuBlockFormat(type);
  };
  return {
    config,
    files: file.shards.map((s) => s.source.name),
    types,
    stored,
    tensor,
    dtype,
    blockFormat,
    async blocks(name, expectedShape, rows) {
      if (blockFormat(name) === null) throw new Error(`${name} is stored as ${types.get(name)}, not a GPU block format`);
      return rowRange((await stored(name, expectedShape)).bytes, expectedShape[0], rows);
    },
    async raw(name, expectedShape, rows) {
      const type = types.get(name);
      let bytes: Uint8Array;
      if (type === 'F32' || type === 'F16' || type === 'BF16') bytes = (await stored(name, expectedShape)).bytes;
      else {
        const values = await tensor(name, expectedShape);
        bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      }
      return { dtype: dtype(name), bytes: rowRange(bytes, expectedShape[0], rows), file: file.name };
    },
  };
}

/** Opens a GGUF base model (one file or all shards): config and weights, validated. */
export async function openGgufModel(sources: ByteSource | ByteSource[]): Promise<OpenedGgufModel> {
  const file = await openGguf(sources);
  const config = ggufModelConfig(file);
  return { config, weights: ggufWeightsSource(file, config), file };
}

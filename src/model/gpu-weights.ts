import { asRange, type Gpu } from '../gpu/context';
import type { VocabPiece } from '../kernels/cross-entropy';
import type { ModelConfig } from './config';
import {
  asWords,
  type BlockFormat,
  chosenFormat,
  encodeWeights,
  isBlockFormat,
  storedBytes,
  type WeightFormat,
  type WeightPrecision,
} from './weight-format';
import { expectedTensorShapes, type ModelWeightsSource } from './weights';

/** A frozen weight matrix on the GPU and how it is stored (src/model/weight-format.ts). */
export interface GpuMatrix {
  buffer: GPUBuffer;
  format: WeightFormat;
}

/** The [vocab, C] embedding or lm_head matrix, in pieces that each fit one binding, all in one format. */
export interface VocabMatrix {
  format: WeightFormat;
  pieces: VocabPiece[];
}

/** Norm weights and q/k/v biases are f32 whatever the precision: they are tiny and their kernels have no format axis. */
export interface LayerWeights {
  inputNorm: GPUBuffer;
  q: GpuMatrix;
  k: GpuMatrix;
  v: GpuMatrix;
  o: GpuMatrix;
  qBias?: GPUBuffer;
  kBias?: GPUBuffer;
  vBias?: GPUBuffer;
  postNorm: GPUBuffer;
  gate: GpuMatrix;
  up: GpuMatrix;
  down: GpuMatrix;
}

/** The frozen base model on the GPU. */
export interface GpuWeights {
  embedding: VocabMatrix;
  lmHead: VocabMatrix;
  layers: LayerWeights[];
  finalNorm: GPUBuffer;
  /** Bytes uploaded (packed weights and f32 norms and biases). */
  bytes: number;
  /** The format every weight matrix has on the GPU, or 'mixed' when 'auto' met a checkpoint that mixes dtypes (or GGUF types). */
  precision: WeightFormat | 'mixed';
}

export interface UploadOptions {
  /**
   * How the weight matrices are stored on the GPU (default 'auto': each keeps its checkpoint dtype;
   * a GGUF tensor in a block format with a GPU decoder keeps its blocks). A float format converts
   * every matrix on the CPU (block formats dequantized first).
   */
  precision?: WeightPrecision;
  onProgress?: (done: number, total: number) => void;
}

/**
 * The format a weight matrix of `source` gets on the GPU under `precision`: under 'auto' a GGUF
 * tensor in a block format with a GPU decoder keeps it, any other tensor its checkpoint dtype; a
 * float precision converts every matrix to it. The uploader and the memory estimate both use this.
 */
export function matrixFormat(source: ModelWeightsSource, name: string, precision: WeightPrecision): WeightFormat {
  return (precision === 'auto' ? source.blockFormat?.(name) : null) ?? chosenFormat(source.dtype(name), precision);
}

/** The format of every weight matrix of `source` under `precision`, by Hugging Face name (1-D tensors are f32 and not listed). */
export function matrixFormatsOf(source: ModelWeightsSource, precision: WeightPrecision): Map<string, WeightFormat> {
  const formats = new Map<string, WeightFormat>();
  for (const [name, shape] of expectedTensorShapes(source.config))
    if (shape.length === 2) formats.set(name, matrixFormat(source, name, precision));
  return formats;
}

/**
 * Vocabulary rows per piece in `format`: a piece is one buffer that one binding covers whole,
 * allocated in 16-byte multiples (Gpu.createBuffer), so the limit is rounded down to 16 first.
 */
export function vocabRowsPerPiece(gpu: Gpu, hiddenSize: number, format: WeightFormat = 'f32'): number {
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  return Math.max(1, Math.floor((limit - (limit % 16)) / storedBytes(format, hiddenSize)));
}

/**
 * Uploads the checkpoint tensor by tensor: each matrix is read as stored, encoded in its format
 * (a BF16 or F16 tensor kept in its own format, or a block-format tensor under 'auto', goes up as
 * the file's bytes) and uploaded before the next one is read; a vocabulary matrix is read and
 * uploaded piece by piece.
 */
export async function uploadWeights(
  gpu: Gpu,
  config: ModelConfig,
  source: ModelWeightsSource,
  { precision = 'auto', onProgress }: UploadOptions = {},
): Promise<GpuWeights> {
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  const total = 2 + config.numLayers + (config.tieWordEmbeddings ? 0 : 1);
  let done = 0;
  let bytes = 0;
  const formats = new Set<WeightFormat>();
  const tick = () => onProgress?.(++done, total);
  const file = source.files[0] ?? 'the checkpoint';

  const vector = async (name: string, size: number) => {
    const data = await source.tensor(name, [size]);
    bytes += data.byteLength;
    return gpu.upload(data, name);
  };
  const blockFormat = (name: string): BlockFormat | null => {
    const format = matrixFormat(source, name, precision);
    return isBlockFormat(format) ? format : null;
  };
  const matrix = async (name: string, shape: [number, number]): Promise<GpuMatrix> => {
    const block = blockFormat(name);
    if (block) {
      const words = asWords(await source.blocks!(name, shape));
      bytes += words.byteLength;
      formats.add(block);
      return { buffer: gpu.upload(words, name), format: block };
    }
    const raw = await source.raw(name, shape);
    const format = chosenFormat(raw.dtype, precision);
    const words = encodeWeights(raw, format, raw.file ?? file, name);
    bytes += words.byteLength;
    formats.add(format);
    return { buffer: gpu.upload(words, name), format };
  };
  const vocabulary = async (name: string): Promise<VocabMatrix> => {
    const V = config.vocabSize;
    const block = blockFormat(name);
    const float = chosenFormat(source.dtype(name), precision);
    const format = block ?? float;
    const rowsPerPiece = vocabRowsPerPiece(gpu, C, format);
    const pieces: VocabPiece[] = [];
    for (let rowStart = 0; rowStart < V; rowStart += rowsPerPiece) {
      const rows = Math.min(rowsPerPiece, V - rowStart);
      const range: [number, number] = [rowStart, rowStart + rows];
      let words: Uint32Array;
      if (block) words = asWords(await source.blocks!(name, [V, C], range));
      else {
        const raw = await source.raw(name, [V, C], range);
        words = encodeWeights(raw, float, raw.file ?? file, name, rowStart * C);
      }
      bytes += words.byteLength;
      pieces.push({ weight: gpu.upload(words, `${name}[${rowStart}..]`), rowStart, rows });
    }
    formats.add(format);
    return { format, pieces };
  };

  const embedding = await vocabulary('model.embed_tokens.weight');
  tick();
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    const layer: LayerWeights = {
      inputNorm: await vector(`${p}input_layernorm.weight`, C),
      q: await matrix(`${p}self_attn.q_proj.weight`, [qDim, C]),
      k: await matrix(`${p}self_attn.k_proj.weight`, [kvDim, C]),
      v: await matrix(`${p}self_attn.v_proj.weight`, [kvDim, C]),
      o: await matrix(`${p}self_attn.o_proj.weight`, [C, qDim]),
      postNorm: await vector(`${p}post_attention_layernorm.weight`, C),
      gate: await matrix(`${p}mlp.gate_proj.weight`, [I, C]),
      up: await matrix(`${p}mlp.up_proj.weight`, [I, C]),
      down: await matrix(`${p}mlp.down_proj.weight`, [C, I]),
    };
    if (config.qkvBias) {
      layer.qBias = await vector(`${p}self_attn.q_proj.bias`, qDim);
      layer.kBias = await vector(`${p}self_attn.k_proj.bias`, kvDim);
      layer.vBias = await vector(`${p}self_attn.v_proj.bias`, kvDim);
    }
    layers.push(layer);
    tick();
  }
  const finalNorm = await vector('model.norm.weight', C);
  tick();
  let lmHead = embedding;
  if (!config.tieWordEmbeddings) {
    lmHead = await vocabulary('lm_head.weight');
    tick();
  }
  const precisionHeld = formats.size === 1 ? [...formats][0] : 'mixed';
  return { embedding, lmHead, layers, finalNorm, bytes, precision: precisionHeld };
}

/** Frees every buffer of the weights (vocabulary pieces shared by tied embeddings once). */
export function destroyWeights(weights: GpuWeights): void {
  for (const piece of new Set([...weights.embedding.pieces, ...weights.lmHead.pieces])) asRange(piece.weight).buffer.destroy();
  for (const layer of weights.layers) {
    for (const matrix of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) matrix.buffer.destroy();
    for (const vector of [layer.inputNorm, layer.postNorm, layer.qBias, layer.kBias, layer.vBias]) vector?.destroy();
  }
  weights.finalNorm.destroy();
}

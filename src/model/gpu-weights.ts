import { allocatedSize, asRange, type Binding, type Gpu } from '../gpu/context';
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

/** A frozen weight matrix on the GPU (a buffer, or q/k/v's range of their stacked one) and how it is stored (weight-format.ts). */
export interface GpuMatrix {
  buffer: Binding;
  format: WeightFormat;
}

/** The [vocab, C] embedding or lm_head matrix, in pieces that each fit one binding, all in one format. */
export interface VocabMatrix {
  format: WeightFormat;
  pieces: VocabPiece[];
}

/**
 * Norm weights and q/k/v biases are f32 whatever the precision: they are tiny and their kernels have
 * no format axis. When `qkvStacked`, q, k and v are ranges of one buffer (and their biases of another),
 * so that one grouped product computes all three (src/kernels/matmul.ts matmulXWtGroups).
 */
export interface LayerWeights {
  inputNorm: GPUBuffer;
  q: GpuMatrix;
  k: GpuMatrix;
  v: GpuMatrix;
  qkvStacked: boolean;
  o: GpuMatrix;
  qBias?: Binding;
  kBias?: Binding;
  vBias?: Binding;
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
 * the file's bytes) and uploaded before the next one is read, except that a layer's q/k/v (and
 * their biases) are read together and stacked into one buffer when they share a format; a
 * vocabulary matrix is read and uploaded piece by piece.
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
  const encoded = async (name: string, shape: [number, number]): Promise<{ words: Uint32Array; format: WeightFormat }> => {
    const block = blockFormat(name);
    if (block) return { words: asWords(await source.blocks!(name, shape)), format: block };
    const raw = await source.raw(name, shape);
    const format = chosenFormat(raw.dtype, precision);
    return { words: encodeWeights(raw, format, raw.file ?? file, name), format };
  };
  const uploaded = (name: string, { words, format }: { words: Uint32Array; format: WeightFormat }): GpuMatrix => {
    bytes += words.byteLength;
    formats.add(format);
    return { buffer: gpu.upload(words, name), format };
  };
  const matrix = async (name: string, shape: [number, number]) => uploaded(name, await encoded(name, shape));
  const attention = async (p: string): Promise<Pick<LayerWeights, 'q' | 'k' | 'v' | 'qkvStacked' | 'qBias' | 'kBias' | 'vBias'>> => {
    const names = ['q_proj', 'k_proj', 'v_proj'].map((t) => `${p}self_attn.${t}`);
    const dims = [qDim, kvDim, kvDim];
    // The three are read before any is uploaded (one layer's q/k/v in host memory at once), to stack them.
    const parts: { words: Uint32Array; format: WeightFormat }[] = [];
    const biases: Float32Array[] = [];
    for (const [i, n] of names.entries()) {
      parts.push(await encoded(`${n}.weight`, [dims[i], C]));
      if (config.qkvBias) biases.push(await source.tensor(`${n}.bias`, [dims[i]]));
    }
    const format = parts[0].format;
    const stacked =
      parts.every((x) => x.format === format) &&
      stackable(
        parts.map((x) => x.words),
        format,
      ) &&
      stackable(biases);
    if (!stacked) {
      const [q, k, v] = parts.map((x, i) => uploaded(`${names[i]}.weight`, x));
      const [qBias, kBias, vBias] = biases.map((b, i) => {
        bytes += b.byteLength;
        return gpu.upload(b, `${names[i]}.bias`);
      });
      return { q, k, v, qkvStacked: false, qBias, kBias, vBias };
    }
    formats.add(format);
    const w = stack(
      gpu,
      parts.map((x) => x.words),
      `${p}self_attn.qkv_proj.weight`,
    );
    const [q, k, v] = w.map((buffer) => ({ buffer, format }));
    const [qBias, kBias, vBias] = config.qkvBias ? stack(gpu, biases, `${p}self_attn.qkv_proj.bias`) : [];
    bytes += [...parts.map((x) => x.words), ...biases].reduce((sum, b) => sum + b.byteLength, 0);
    return { q, k, v, qkvStacked: true, qBias, kBias, vBias };
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
      ...(await attention(p)),
      o: await matrix(`${p}self_attn.o_proj.weight`, [C, qDim]),
      postNorm: await vector(`${p}post_attention_layernorm.weight`, C),
      gate: await matrix(`${p}mlp.gate_proj.weight`, [I, C]),
      up: await matrix(`${p}mlp.up_proj.weight`, [I, C]),
      down: await matrix(`${p}mlp.down_proj.weight`, [C, I]),
    };
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
    const matrices = [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down].map((m) => m.buffer);
    const vectors = [layer.inputNorm, layer.postNorm, layer.qBias, layer.kBias, layer.vBias].filter((v) => v !== undefined);
    // Stacked q/k/v share one buffer (and their biases another): each freed once.
    for (const buffer of new Set([...matrices, ...vectors].map((b) => asRange(b).buffer))) buffer.destroy();
  }
  weights.finalNorm.destroy();
}

/**
 * Whether tensors can share one buffer at no cost: `stack` gives each the 16-byte multiple that
 * Gpu.createBuffer would give it alone (and the memory estimate counts), so the shared buffer is
 * exactly their separate buffers' sum. A block-format part must fill its 16-byte units, so that every
 * part starts a whole number of blocks after the first (matmulXWtGroups binds them as one range).
 */
function stackable(parts: readonly (Uint32Array | Float32Array)[], format: WeightFormat = 'f32'): boolean {
  return parts.every((p) => p.byteLength > 0 && (!isBlockFormat(format) || p.byteLength % 16 === 0));
}

/** Uploads `parts` one after another (each at a 16-byte boundary) into one buffer and returns each part's range of it. */
function stack(gpu: Gpu, parts: readonly (Uint32Array | Float32Array)[], label: string): Binding[] {
  const buffer = gpu.createBuffer(
    parts.reduce((sum, p) => sum + allocatedSize(p.byteLength), 0),
    label,
  );
  let offset = 0;
  return parts.map((p) => {
    gpu.write(buffer, p, offset);
    const range = { buffer, offset, size: p.byteLength };
    offset += allocatedSize(p.byteLength);
    return range;
  });
}

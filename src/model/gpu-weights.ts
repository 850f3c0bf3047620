import { asRange, type Gpu } from '../gpu/context';
import type { VocabPiece } from '../kernels/cross-entropy';
import type { ModelConfig } from './config';
import type { ModelWeightsSource } from './weights';

export interface LayerWeights {
  inputNorm: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  o: GPUBuffer;
  qBias?: GPUBuffer;
  kBias?: GPUBuffer;
  vBias?: GPUBuffer;
  postNorm: GPUBuffer;
  gate: GPUBuffer;
  up: GPUBuffer;
  down: GPUBuffer;
}

/** The frozen base model on the GPU. Vocabulary matrices are split into pieces that fit a binding. */
export interface GpuWeights {
  embedding: VocabPiece[];
  lmHead: VocabPiece[];
  layers: LayerWeights[];
  finalNorm: GPUBuffer;
  bytes: number;
}

export function vocabRowsPerPiece(gpu: Gpu, hiddenSize: number): number {
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  return Math.max(1, Math.floor(limit / (hiddenSize * 4)));
}

export async function uploadWeights(
  gpu: Gpu,
  config: ModelConfig,
  source: ModelWeightsSource,
  onProgress?: (done: number, total: number) => void,
): Promise<GpuWeights> {
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  const total = 2 + config.numLayers + (config.tieWordEmbeddings ? 0 : 1);
  let done = 0;
  let bytes = 0;
  const tick = () => onProgress?.(++done, total);

  const load = async (name: string, shape: number[]) => {
    const data = await source.tensor(name, shape);
    bytes += data.byteLength;
    return gpu.upload(data, name);
  };
  const loadVocab = async (name: string): Promise<VocabPiece[]> => {
    const data = await source.tensor(name, [config.vocabSize, C]);
    bytes += data.byteLength;
    const rowsPerPiece = vocabRowsPerPiece(gpu, C);
    const pieces: VocabPiece[] = [];
    for (let rowStart = 0; rowStart < config.vocabSize; rowStart += rowsPerPiece) {
      const rows = Math.min(rowsPerPiece, config.vocabSize - rowStart);
      const weight = gpu.upload(data.subarray(rowStart * C, (rowStart + rows) * C), `${name}[${rowStart}..]`);
      pieces.push({ weight, rowStart, rows });
    }
    return pieces;
  };

  const embedding = await loadVocab('model.embed_tokens.weight');
  tick();
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}.`;
    const layer: LayerWeights = {
      inputNorm: await load(`${p}input_layernorm.weight`, [C]),
      q: await load(`${p}self_attn.q_proj.weight`, [qDim, C]),
      k: await load(`${p}self_attn.k_proj.weight`, [kvDim, C]),
      v: await load(`${p}self_attn.v_proj.weight`, [kvDim, C]),
      o: await load(`${p}self_attn.o_proj.weight`, [C, qDim]),
      postNorm: await load(`${p}post_attention_layernorm.weight`, [C]),
      gate: await load(`${p}mlp.gate_proj.weight`, [I, C]),
      up: await load(`${p}mlp.up_proj.weight`, [I, C]),
      down: await load(`${p}mlp.down_proj.weight`, [C, I]),
    };
    if (config.qkvBias) {
      layer.qBias = await load(`${p}self_attn.q_proj.bias`, [qDim]);
      layer.kBias = await load(`${p}self_attn.k_proj.bias`, [kvDim]);
      layer.vBias = await load(`${p}self_attn.v_proj.bias`, [kvDim]);
    }
    layers.push(layer);
    tick();
  }
  const finalNorm = await load('model.norm.weight', [C]);
  tick();
  let lmHead = embedding;
  if (!config.tieWordEmbeddings) {
    lmHead = await loadVocab('lm_head.weight');
    tick();
  }
  return { embedding, lmHead, layers, finalNorm, bytes };
}

/** Frees every buffer of the weights (vocabulary pieces shared by tied embeddings once). */
export function destroyWeights(weights: GpuWeights): void {
  for (const piece of new Set([...weights.embedding, ...weights.lmHead])) asRange(piece.weight).buffer.destroy();
  for (const layer of weights.layers) for (const buffer of Object.values(layer)) buffer?.destroy();
  weights.finalNorm.destroy();
}

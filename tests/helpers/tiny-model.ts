import type { ModelConfig } from '../../src/model/config';
import { tensorToFloat32 } from '../../src/model/safetensors';
import type { RawTensor } from '../../src/model/weight-format';
import type { ModelWeightsSource } from '../../src/model/weights';
import { type Batch, makeBatch } from '../../src/train/batch';
import { randomArray } from './numeric';

/**
 * A small random-init Llama/Qwen2-shaped model held in memory, with awkward sizes (nothing a
 * multiple of a tile) so every kernel's edges are exercised.
 */
export function tinyConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    architecture: 'qwen2',
    hiddenSize: 30,
    intermediateSize: 43,
    numLayers: 2,
    numHeads: 3,
    numKvHeads: 1,
    headDim: 10,
    vocabSize: 37,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    qkvBias: true,
    maxPositionEmbeddings: 64,
    bosTokenId: 1,
    eosTokenIds: [2],
    ...overrides,
  };
}

export function tinyWeights(config: ModelConfig, seed = 7): Map<string, Float32Array> {
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  const tensors = new Map<string, Float32Array>();
  let s = seed;
  const add = (name: string, n: number, scale: number, offset = 0) => {
    const data = randomArray(n, s++, -scale, scale);
    if (offset) for (let i = 0; i < n; i++) data[i] += offset;
    tensors.set(name, data);
  };
  add('model.embed_tokens.weight', config.vocabSize * C, 1);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}.`;
    add(`${p}input_layernorm.weight`, C, 0.2, 1);
    add(`${p}self_attn.q_proj.weight`, qDim * C, 0.4);
    add(`${p}self_attn.k_proj.weight`, kvDim * C, 0.4);
    add(`${p}self_attn.v_proj.weight`, kvDim * C, 0.4);
    add(`${p}self_attn.o_proj.weight`, C * qDim, 0.3);
    if (config.qkvBias) {
      add(`${p}self_attn.q_proj.bias`, qDim, 0.2);
      add(`${p}self_attn.k_proj.bias`, kvDim, 0.2);
      add(`${p}self_attn.v_proj.bias`, kvDim, 0.2);
    }
    add(`${p}post_attention_layernorm.weight`, C, 0.2, 1);
    add(`${p}mlp.gate_proj.weight`, I * C, 0.3);
    add(`${p}mlp.up_proj.weight`, I * C, 0.3);
    add(`${p}mlp.down_proj.weight`, C * I, 0.3);
  }
  add('model.norm.weight', C, 0.2, 1);
  if (!config.tieWordEmbeddings) add('lm_head.weight', config.vocabSize * C, 0.5);
  return tensors;
}

/** Tensors held in memory: f32 values, or raw bytes in a checkpoint dtype (a BF16-stored model). */
export function memoryWeightsSource(config: ModelConfig, tensors: Map<string, Float32Array | RawTensor>): ModelWeightsSource {
  const raw = (name: string, expectedShape: number[]): RawTensor => {
    const data = tensors.get(name);
    const numel = expectedShape.reduce((a, b) => a * b, 1);
    const stored: RawTensor | undefined =
      data instanceof Float32Array ? { dtype: 'F32', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) } : data;
    if (!stored || stored.bytes.byteLength !== numel * (stored.dtype === 'F32' ? 4 : 2)) {
      throw new Error(`tiny model: ${name} missing or not [${expectedShape}]`);
    }
    return stored;
  };
  return {
    config,
    files: ['memory'],
    async tensor(name, expectedShape) {
      const { bytes, dtype } = raw(name, expectedShape);
      return tensorToFloat32(bytes, dtype, 'memory', name);
    },
    dtype(name) {
      const data = tensors.get(name);
      if (!data) throw new Error(`tiny model: no ${name}`);
      return data instanceof Float32Array ? 'F32' : data.dtype;
    },
    async raw(name, expectedShape, rows) {
      const stored = raw(name, expectedShape);
      if (!rows) return stored;
      const rowBytes = stored.bytes.byteLength / expectedShape[0];
      return { dtype: stored.dtype, bytes: stored.bytes.subarray(rows[0] * rowBytes, rows[1] * rowBytes) };
    },
  };
}

/**
 * Two micro-batches for a tinyConfig model: padded rows, masked prompt tokens and a lone row, so
 * accumulation, padding and the loss mask are all exercised.
 */
export function tinyMicroBatches(): Batch[] {
  return [
    makeBatch(
      [
        [1, 5, 9, 22, 3, 36, 17],
        [1, 30, 2, 2, 11, 0, 0],
      ],
      [
        [-100, -100, 9, 22, 3, 36, 17],
        [-100, 30, 2, 2, 11, -100, -100],
      ],
    ),
    makeBatch([[1, 8, 8, 4, 19, 33, 2]], [[-100, 8, 8, 4, 19, 33, 2]]),
  ];
}

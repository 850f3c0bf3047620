/**
 * Models for the llama.cpp tests. stories260K's hidden size is 64, so its matrices take Q8_0 and
 * Q4_0 (32-value blocks) but no K-quant (256-value blocks; ffn_down's rows of 172 take neither
 * and stay F16); the K-quant model is a small random Llama with every width a multiple of 256,
 * using the stories260K tokenizer. `f32Twin` is the judge's second file: the same GGUF with
 * every tensor replaced by our CPU dequantization of its blocks.
 */
import type { ModelConfig } from '../../src/model/config';
import type { ModelWeightsSource, OpenedModel } from '../../src/model/weights';
import { expectedTensorShapes } from '../../src/model/weights';
import { encodeGguf } from '../../src/gguf/encode';
import { openGguf } from '../../src/gguf/file';
import type { GgufModelOptions } from '../../src/gguf/model-writer';
import { nodeByteSource } from '../../src/gguf/node-byte-source';
import { dequantize, quantize } from '../../src/gguf/quants';
import { gguf, type GgufValue } from '../../src/gguf/values';
import { randomArray } from '../helpers/numeric';
import { memoryWeightsSource } from '../helpers/tiny-model';

export type ModelSpec = Pick<GgufModelOptions, 'config' | 'weights' | 'tokenizer'>;

export function storiesSpec(stories: OpenedModel): ModelSpec {
  return {
    config: stories.config,
    weights: stories.weights,
    tokenizer: { tokenizerJson: stories.tokenizerJson, tokenizerConfig: stories.tokenizerConfig },
  };
}

let kQuant: ModelSpec | null = null;
let storiesTokenizer: ModelSpec['tokenizer'] | null = null;

export function useStoriesTokenizer(tokenizer: ModelSpec['tokenizer']): void {
  storiesTokenizer = tokenizer;
}

/**
 * A 2-layer Llama, hidden 256, 4 heads of 64 (2 kv heads), intermediate 512, vocabulary 512,
 * untied, random weights.
 */
export function kQuantModel(): ModelSpec {
  if (kQuant) return kQuant;
  if (!storiesTokenizer) throw new Error('call useStoriesTokenizer first');
  const config: ModelConfig = {
    architecture: 'llama',
    hiddenSize: 256,
    intermediateSize: 512,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 512,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    qkvBias: false,
    maxPositionEmbeddings: 128,
    bosTokenId: 1,
    eosTokenIds: [2],
  };
  kQuant = { config, weights: randomWeights(config, 100), tokenizer: storiesTokenizer };
  return kQuant;
}

/**
 * Random weights for `config` by Hugging Face name: uniform with variance 1/fan-in (lm_head 9/fan-in,
 * embeddings in [-1, 1]), norms near 1, biases small, so activations and logits have realistic sizes.
 */
export function randomWeights(config: ModelConfig, seed: number): ModelWeightsSource {
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (name.endsWith('.bias')) tensors.set(name, randomArray(n, seed++, -0.1, 0.1));
    else if (shape.length === 1) tensors.set(name, randomArray(n, seed++, 0.8, 1.2));
    else {
      const bound = name.includes('embed_tokens') ? 1 : (name === 'lm_head.weight' ? 3 : 1) * Math.sqrt(3 / shape[1]);
      tensors.set(name, randomArray(n, seed++, -bound, bound));
    }
  }
  return memoryWeightsSource(config, tensors);
}

/**
 * The parts of an F32 GGUF with the metadata and tensor names of `file`, every tensor our
 * dequantization of its stored blocks (q/k rows left as stored: this is GGUF to GGUF).
 * `reverseBlocks` is the negative control: each block's values in reverse order, what a
 * dequantizer that misreads the order of values inside a block would produce.
 */
export async function f32Twin(file: string, opts: { reverseBlocks?: boolean } = {}): Promise<Uint8Array[]> {
  const source = await openGguf(await nodeByteSource(file));
  const metadata: [string, GgufValue][] = [];
  for (const [key, value] of source.metadata) {
    if (key === 'general.quantization_version') continue;
    metadata.push([key, key === 'general.file_type' ? gguf.u32(0) : value]);
  }
  const tensors = [];
  for (const t of source.tensors.values()) {
    const values = dequantize(t.type.name as never, await source.readTensorBytes(t), t.elements);
    const block = t.type.blockSize;
    if (opts.reverseBlocks && block > 1) for (let at = 0; at < values.length; at += block) values.subarray(at, at + block).reverse();
    tensors.push({ name: t.name, dims: t.dims, type: 'F32' as const, data: quantize('F32', values, t.dims[0]) });
  }
  return encodeGguf(metadata, tensors);
}

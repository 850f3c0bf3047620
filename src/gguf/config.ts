/**
 * GGUF metadata -> the engine's ModelConfig, for the `llama` and `qwen2` architectures, with the
 * same strictness as config.json (model/config.ts): an unknown architecture, a missing size, or
 * anything the engine would compute differently from llama.cpp (RoPE scaling or frequency
 * factors, partial rotary, per-layer sizes, experts, attention biases on llama) is refused with
 * an UnsupportedModelError naming the key. Keys follow llama.cpp's `<arch>.*` names.
 */
import type { ModelConfig } from '../model/config';
import { UnsupportedModelError } from '../model/errors';
import type { GgufFile } from './file';
import { describeValue, type GgufMetadata, GgufValueType, numberArrayOf, numberOf, stringArrayOf, stringOf } from './values';

const ARCHITECTURES: readonly string[] = ['llama', 'qwen2'];

/** llama.cpp's defaults where a key may be absent. */
const DEFAULT_ROPE_BASE = 10000;

/** The model config of a GGUF file, from its metadata and (for tied embeddings and biases) its tensor names. */
export function ggufModelConfig(file: Pick<GgufFile, 'name' | 'metadata' | 'tensors'>): ModelConfig {
  const { metadata, tensors } = file;
  const unsupported = (feature: string, problem: string): never => {
    throw new UnsupportedModelError(file.name, feature, problem);
  };
  const has = (name: string) => tensors.has(name);

  const arch = stringOf(metadata.get('general.architecture'));
  if (arch === null) return unsupported('general.architecture', 'the required key "general.architecture" is missing or not a string');
  if (!ARCHITECTURES.includes(arch)) return unsupported(arch, `general.architecture "${arch}" is not supported`);
  const architecture = arch as ModelConfig['architecture'];
  const type = stringOf(metadata.get('general.type'));
  if (type !== null && type !== 'model') {
    unsupported(
      'general.type',
      `general.type is "${type}": this file is not a base model (a LoRA adapter is loaded on top of its base model)`,
    );
  }

  const key = (k: string) => `${arch}.${k}`;
  /** A positive integer, also from a per-layer array whose entries all agree. */
  const positiveInt = (k: string, fallback?: number): number => {
    const name = key(k);
    const v = metadata.get(name);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      return unsupported(name, `the required key "${name}" is missing`);
    }
    let n = numberOf(v);
    if (v.type === GgufValueType.ARRAY) {
      const items = numberArrayOf(v);
      if (items && items.length > 0 && items.every((x) => x === items[0])) n = items[0];
      else return unsupported(name, `"${name}" differs between layers (${describeValue(v)}); only models with equal layers are supported`);
    }
    if (n === null || !Number.isSafeInteger(n) || n <= 0)
      return unsupported(name, `"${name}" is ${describeValue(v)}, expected a positive integer`);
    return n;
  };
  const positiveNumber = (name: string, fallback?: number): number => {
    const v = metadata.get(name);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      return unsupported(name, `the required key "${name}" is missing`);
    }
    const n = numberOf(v);
    if (n === null || !Number.isFinite(n) || n <= 0)
      return unsupported(name, `"${name}" is ${describeValue(v)}, expected a positive number`);
    return n;
  };

  const hiddenSize = positiveInt('embedding_length');
  const intermediateSize = positiveInt('feed_forward_length');
  const numLayers = positiveInt('block_count');
  const numHeads = positiveInt('attention.head_count');
  const numKvHeads = positiveInt('attention.head_count_kv', numHeads);
  if (numHeads % numKvHeads !== 0) {
    unsupported(
      key('attention.head_count_kv'),
      `attention.head_count (${numHeads}) is not a multiple of attention.head_count_kv (${numKvHeads})`,
    );
  }
  if (!metadata.has(key('attention.key_length')) && hiddenSize % numHeads !== 0) {
    unsupported(
      key('embedding_length'),
      `embedding_length (${hiddenSize}) is not a multiple of attention.head_count (${numHeads}) and no key_length is given`,
    );
  }
  const headDim = positiveInt('attention.key_length', hiddenSize / numHeads);
  if (positiveInt('attention.value_length', headDim) !== headDim) {
    unsupported(
      key('attention.value_length'),
      `attention.value_length differs from attention.key_length (${headDim}); only equal head sizes are supported`,
    );
  }
  if (headDim % 2 !== 0)
    unsupported(key('attention.key_length'), `the head size ${headDim} is odd; rotary embeddings need an even head size`);
  const rotary = positiveInt('rope.dimension_count', headDim);
  if (rotary !== headDim) {
    unsupported(
      key('rope.dimension_count'),
      `rope.dimension_count is ${rotary}, but the head size is ${headDim}; partial rotary embeddings are not supported`,
    );
  }

  checkRopeScaling(metadata, arch, has, unsupported);
  const experts = numberOf(metadata.get(key('expert_count')));
  if (experts !== null && experts > 0)
    unsupported(key('expert_count'), `the model has ${experts} experts; mixture-of-experts models are not supported`);
  if (architecture === 'llama' && (has('blk.0.attn_q.bias') || has('blk.0.attn_output.bias') || has('blk.0.ffn_up.bias'))) {
    unsupported('attention_bias', 'the llama model has bias tensors (attention_bias / mlp_bias), which are not supported for Llama models');
  }

  // llama.cpp takes the vocabulary size from the token list when <arch>.vocab_size is absent.
  const vocabSize = positiveInt(
    'vocab_size',
    stringArrayOf(metadata.get('tokenizer.ggml.tokens'))?.length || tensors.get('token_embd.weight')?.dims[1],
  );
  const tokenId = (name: string): number | null => {
    const v = metadata.get(name);
    if (v === undefined) return null;
    const id = numberOf(v);
    if (id === null || !Number.isSafeInteger(id) || id < 0)
      return unsupported(name, `"${name}" is ${describeValue(v)}, expected a token id`);
    return id;
  };
  const eos = [tokenId('tokenizer.ggml.eos_token_id'), tokenId('tokenizer.ggml.eot_token_id')].filter((id): id is number => id !== null);

  return {
    architecture,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: positiveNumber(key('attention.layer_norm_rms_epsilon')),
    // A RoPE scaling (rope_freqs.weight, <arch>.rope.scaling.*) is refused above.
    ropeScaling: null,
    ropeTheta: positiveNumber(key('rope.freq_base'), DEFAULT_ROPE_BASE),
    tieWordEmbeddings: !has('output.weight'),
    qkvBias: architecture === 'qwen2',
    maxPositionEmbeddings: positiveInt('context_length'),
    bosTokenId: tokenId('tokenizer.ggml.bos_token_id'),
    eosTokenIds: [...new Set(eos)],
  };
}

/** llama.cpp would scale RoPE for any of these; webtune computes plain RoPE only. */
function checkRopeScaling(
  metadata: GgufMetadata,
  arch: string,
  has: (tensor: string) => boolean,
  unsupported: (feature: string, problem: string) => never,
): void {
  const scalingType = stringOf(metadata.get(`${arch}.rope.scaling.type`));
  const factor = numberOf(metadata.get(`${arch}.rope.scaling.factor`));
  const freqScale = numberOf(metadata.get(`${arch}.rope.freq_scale`));
  const plain = scalingType === null || scalingType === 'none' || (scalingType === 'linear' && (factor === null || factor === 1));
  if (!plain) {
    const named = factor === null ? `"${scalingType}"` : `"${scalingType}" with factor ${factor}`;
    unsupported(`${arch}.rope.scaling.type`, `RoPE scaling ${named} is not supported; only plain RoPE (no rope.scaling) is`);
  }
  if (scalingType === null && factor !== null && factor !== 0 && factor !== 1) {
    unsupported(`${arch}.rope.scaling.factor`, `RoPE scaling factor ${factor} is not supported; only plain RoPE (no rope.scaling) is`);
  }
  if (freqScale !== null && freqScale !== 1) {
    unsupported(`${arch}.rope.freq_scale`, `rope.freq_scale ${freqScale} (scaled RoPE) is not supported; only plain RoPE is`);
  }
  if (has('rope_freqs.weight')) {
    unsupported(
      'rope_freqs.weight',
      'the file has RoPE frequency factors (rope_freqs.weight, Llama 3.1-style RoPE scaling), which are not supported',
    );
  }
}

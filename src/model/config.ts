/**
 * Reads a Hugging Face config.json into the sizes the engine needs, with the defaults the
 * transformers config classes apply, and rejects anything the engine would silently compute
 * differently from transformers (other architectures, activations, RoPE scalings other than
 * Llama 3's, extra biases, sliding-window attention).
 */
import { UnsupportedModelError } from './errors';

export interface ModelConfig {
  architecture: 'llama' | 'qwen2';
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Llama 3.x frequency-dependent RoPE scaling, or null for plain RoPE. */
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (always for Qwen2, never for the Llama models accepted). */
  qkvBias: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

/**
 * `rope_type: "llama3"`: the inverse frequencies of plain RoPE, divided by `factor` where their
 * wavelength exceeds originalMaxPositionEmbeddings / lowFreqFactor, kept where it is below
 * originalMaxPositionEmbeddings / highFreqFactor, and blended smoothly in between (transformers'
 * _compute_llama3_parameters; src/kernels/rope.ts builds the table).
 */
export interface RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

const ARCHITECTURE_CLASSES: Record<string, ModelConfig['architecture']> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
};

const DEFAULTS: Record<
  ModelConfig['architecture'],
  { rmsNormEps: number; maxPositionEmbeddings: number; bos: number | null; eos: number[] }
> = {
  llama: { rmsNormEps: 1e-6, maxPositionEmbeddings: 2048, bos: 1, eos: [2] },
  qwen2: { rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, bos: null, eos: [] },
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseModelConfig(json: unknown, fileName = 'config.json'): ModelConfig {
  const unsupported = (feature: string, problem: string): never => {
    throw new UnsupportedModelError(fileName, feature, problem);
  };
  if (!isRecord(json)) return unsupported('config', 'is not a JSON object');
  const cfg = json;

  const architecture = detectArchitecture(cfg, unsupported);

  const present = (key: string) => cfg[key] !== undefined && cfg[key] !== null;
  const positiveInt = (key: string, fallback?: number): number => {
    if (!present(key)) {
      if (fallback !== undefined) return fallback;
      return unsupported(key, `the required field "${key}" is missing`);
    }
    const v = cfg[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      return unsupported(key, `"${key}" is ${JSON.stringify(v)}, expected a positive integer`);
    }
    return v;
  };
  const positiveNumber = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      return unsupported(key, `"${key}" is ${JSON.stringify(value)}, expected a positive number`);
    }
    return value;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    if (!present(key)) return fallback;
    if (typeof cfg[key] !== 'boolean') return unsupported(key, `"${key}" is ${JSON.stringify(cfg[key])}, expected true or false`);
    return cfg[key] as boolean;
  };
  const tokenId = (key: string, value: unknown): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      return unsupported(key, `"${key}" contains ${JSON.stringify(value)}, expected a token id (non-negative integer)`);
    }
    return value;
  };

  const hiddenAct = present('hidden_act') ? cfg.hidden_act : 'silu';
  if (hiddenAct !== 'silu') {
    unsupported('hidden_act', `hidden_act ${JSON.stringify(hiddenAct)} is not supported (only "silu", as in Llama and Qwen2)`);
  }

  const hiddenSize = positiveInt('hidden_size');
  const intermediateSize = positiveInt('intermediate_size');
  const numLayers = positiveInt('num_hidden_layers');
  const numHeads = positiveInt('num_attention_heads');
  const vocabSize = positiveInt('vocab_size');
  const numKvHeads = positiveInt('num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0) {
    unsupported('num_key_value_heads', `num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  }
  if (!present('head_dim') && hiddenSize % numHeads !== 0) {
    unsupported(
      'hidden_size',
      `hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}) and no head_dim is given`,
    );
  }
  const headDim = positiveInt('head_dim', hiddenSize / numHeads);
  if (headDim % 2 !== 0) unsupported('head_dim', `head_dim ${headDim} is odd; rotary embeddings need an even head size`);

  const defaults = DEFAULTS[architecture];
  const rmsNormEps = present('rms_norm_eps') ? positiveNumber('rms_norm_eps', cfg.rms_norm_eps) : defaults.rmsNormEps;
  const { theta: ropeTheta, scaling: ropeScaling } = parseRope(cfg, positiveNumber, unsupported);

  if (architecture === 'llama') {
    if (flag('attention_bias', false))
      unsupported('attention_bias', 'attention_bias: true (biases on the attention projections) is not supported for Llama models');
    if (flag('mlp_bias', false))
      unsupported('mlp_bias', 'mlp_bias: true (biases on the MLP projections) is not supported for Llama models');
  } else {
    if (flag('use_sliding_window', false)) {
      unsupported(
        'use_sliding_window',
        'use_sliding_window: true (sliding-window attention) is not supported; only full causal attention is',
      );
    }
  }
  const layerTypes = cfg.layer_types;
  if (Array.isArray(layerTypes)) {
    const other = layerTypes.find((t) => t !== 'full_attention');
    if (other !== undefined) unsupported('layer_types', `layer type ${JSON.stringify(other)} is not supported (only "full_attention")`);
  }

  let eosTokenIds = defaults.eos;
  if (cfg.eos_token_id === null) eosTokenIds = [];
  else if (Array.isArray(cfg.eos_token_id)) eosTokenIds = cfg.eos_token_id.map((v) => tokenId('eos_token_id', v));
  else if (cfg.eos_token_id !== undefined) eosTokenIds = [tokenId('eos_token_id', cfg.eos_token_id)];

  return {
    architecture,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps,
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: flag('tie_word_embeddings', false),
    qkvBias: architecture === 'qwen2',
    maxPositionEmbeddings: positiveInt('max_position_embeddings', defaults.maxPositionEmbeddings),
    bosTokenId:
      cfg.bos_token_id === undefined ? defaults.bos : cfg.bos_token_id === null ? null : tokenId('bos_token_id', cfg.bos_token_id),
    eosTokenIds,
  };
}

function detectArchitecture(
  cfg: Record<string, unknown>,
  unsupported: (feature: string, problem: string) => never,
): ModelConfig['architecture'] {
  const classes = Array.isArray(cfg.architectures) ? cfg.architectures.filter((a): a is string => typeof a === 'string') : [];
  const modelType = cfg.model_type;
  let architecture: ModelConfig['architecture'];
  if (modelType === 'llama' || modelType === 'qwen2') {
    architecture = modelType;
  } else if (modelType === undefined || modelType === null) {
    const known = classes.map((c) => ARCHITECTURE_CLASSES[c]).find((a) => a !== undefined);
    if (!known) {
      return unsupported('model_type', `has no model_type and its architectures ${JSON.stringify(classes)} are not supported`);
    }
    architecture = known;
  } else {
    return unsupported(String(modelType), `model_type ${JSON.stringify(modelType)} is not supported`);
  }
  // A checkpoint for another head (e.g. LlamaForSequenceClassification) has no usable LM head.
  if (classes.length > 0 && !classes.some((c) => c.endsWith('ForCausalLM'))) {
    unsupported(classes.join(', '), `architectures ${JSON.stringify(classes)} is not a causal language model (expected *ForCausalLM)`);
  }
  return architecture;
}

/**
 * RoPE base frequency and scaling. Newer transformers versions write `rope_parameters` (base
 * frequency and scaling in one object) instead of `rope_theta`/`rope_scaling`; both spell "no
 * scaling" as a missing/null value or type "default". Llama 3's "llama3" is the one scaling
 * implemented; any other (linear, dynamic, yarn, longrope...) changes the positions the model was
 * trained for, so it is refused rather than ignored.
 */
function parseRope(
  cfg: Record<string, unknown>,
  positiveNumber: (key: string, value: unknown) => number,
  unsupported: (feature: string, problem: string) => never,
): { theta: number; scaling: RopeScaling | null } {
  let scaling: RopeScaling | null = null;
  for (const key of ['rope_scaling', 'rope_parameters']) {
    const value = cfg[key];
    if (value === undefined || value === null) continue;
    if (!isRecord(value)) return unsupported(key, `"${key}" is ${JSON.stringify(value)}, expected an object or null`);
    // rope_parameters always carries the base frequency, so a missing type there means plain RoPE;
    // a rope_scaling object without a type is some scaling we cannot identify.
    const type = value.rope_type ?? value.type ?? (key === 'rope_parameters' ? 'default' : undefined);
    if (type === 'default') continue;
    if (type !== 'llama3') {
      const named = type === undefined ? 'without a type' : `of type ${JSON.stringify(type)}`;
      return unsupported(key, `RoPE scaling ${named} (${key}) is not supported; only plain RoPE and Llama 3's "llama3" scaling are`);
    }
    scaling = parseLlama3Scaling(key, value, positiveNumber, unsupported);
  }
  const params = cfg.rope_parameters;
  let theta = 10000;
  if (isRecord(params) && params.rope_theta !== undefined) theta = positiveNumber('rope_parameters.rope_theta', params.rope_theta);
  else if (cfg.rope_theta !== undefined && cfg.rope_theta !== null) theta = positiveNumber('rope_theta', cfg.rope_theta);
  return { theta, scaling };
}

function parseLlama3Scaling(
  key: string,
  value: Record<string, unknown>,
  positiveNumber: (key: string, value: unknown) => number,
  unsupported: (feature: string, problem: string) => never,
): RopeScaling {
  const field = (name: string) => {
    if (value[name] === undefined || value[name] === null) {
      return unsupported(`${key}.${name}`, `llama3 RoPE scaling (${key}) needs "${name}", which is missing`);
    }
    return positiveNumber(`${key}.${name}`, value[name]);
  };
  const scaling: RopeScaling = {
    type: 'llama3',
    factor: field('factor'),
    lowFreqFactor: field('low_freq_factor'),
    highFreqFactor: field('high_freq_factor'),
    originalMaxPositionEmbeddings: field('original_max_position_embeddings'),
  };
  if (!Number.isSafeInteger(scaling.originalMaxPositionEmbeddings)) {
    unsupported(
      `${key}.original_max_position_embeddings`,
      `"original_max_position_embeddings" is ${scaling.originalMaxPositionEmbeddings}, expected an integer`,
    );
  }
  // The smooth band divides by high - low; equal factors leave no band to blend over.
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    unsupported(
      `${key}.high_freq_factor`,
      `llama3 RoPE scaling needs high_freq_factor (${scaling.highFreqFactor}) above low_freq_factor (${scaling.lowFreqFactor})`,
    );
  }
  return scaling;
}

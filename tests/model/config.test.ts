import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/model/config';
import { UnsupportedModelError } from '../../src/model/errors';
import { STORIES_DIR } from './helpers';

const smolLM2 = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 0,
  eos_token_id: 0,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 49152,
};

const qwen25 = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

function expectUnsupported(json: unknown, ...patterns: RegExp[]): UnsupportedModelError {
  let error: unknown;
  try {
    parseModelConfig(json);
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(UnsupportedModelError);
  const e = error as UnsupportedModelError;
  expect(e.message).toContain('config.json');
  for (const p of patterns) expect(e.message).toMatch(p);
  return e;
}

describe('parseModelConfig', () => {
  it('parses stories260K', async () => {
    const json = JSON.parse(await readFile(path.join(STORIES_DIR, 'config.json'), 'utf8'));
    expect(parseModelConfig(json)).toEqual({
      architecture: 'llama',
      hiddenSize: 64,
      intermediateSize: 172,
      numLayers: 5,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 8,
      vocabSize: 512,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: true,
      qkvBias: false,
      maxPositionEmbeddings: 512,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
  });

  it('parses a SmolLM2 config', () => {
    expect(parseModelConfig(smolLM2)).toMatchObject({
      architecture: 'llama',
      hiddenSize: 576,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      intermediateSize: 1536,
      vocabSize: 49152,
      rmsNormEps: 1e-5,
      ropeTheta: 100000,
      tieWordEmbeddings: true,
      qkvBias: false,
      bosTokenId: 0,
      eosTokenIds: [0],
    });
  });

  it('parses a Qwen2.5 config: q/k/v biases, unused sliding window', () => {
    expect(parseModelConfig(qwen25)).toMatchObject({
      architecture: 'qwen2',
      hiddenSize: 896,
      numHeads: 14,
      numKvHeads: 2,
      headDim: 64,
      rmsNormEps: 1e-6,
      ropeTheta: 1e6,
      tieWordEmbeddings: true,
      qkvBias: true,
      eosTokenIds: [151643],
    });
  });

  it('applies the transformers defaults', () => {
    const minimal = {
      model_type: 'llama',
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      vocab_size: 100,
    };
    expect(parseModelConfig(minimal)).toMatchObject({
      numKvHeads: 4,
      headDim: 32,
      ropeTheta: 10000,
      rmsNormEps: 1e-6,
      tieWordEmbeddings: false,
      maxPositionEmbeddings: 2048,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    const { model_type: _, ...untyped } = { ...minimal, architectures: ['Qwen2ForCausalLM'] };
    expect(parseModelConfig(untyped).architecture).toBe('qwen2');
    expect(
      parseModelConfig({ ...minimal, eos_token_id: [2, 7], rope_parameters: { rope_type: 'default', rope_theta: 5e5 } }),
    ).toMatchObject({
      eosTokenIds: [2, 7],
      ropeTheta: 5e5,
    });
  });

  it('rejects other architectures, naming them and what is supported', () => {
    const e = expectUnsupported(
      { ...smolLM2, model_type: 'mistral', architectures: ['MistralForCausalLM'] },
      /"mistral"/,
      /llama/,
      /qwen2/,
    );
    expect(e.feature).toBe('mistral');
    expectUnsupported({ model_type: 'gpt2', n_embd: 768 }, /"gpt2"/);
    expectUnsupported({ ...smolLM2, architectures: ['LlamaForSequenceClassification'] }, /LlamaForSequenceClassification/, /causal/);
  });

  it('parses Llama 3 RoPE scaling from rope_scaling (rope_type or type) and from rope_parameters', () => {
    const llama3 = { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192 };
    const expected = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
    expect(parseModelConfig({ ...smolLM2, rope_theta: 500000.0, rope_scaling: { ...llama3, rope_type: 'llama3' } })).toMatchObject({
      ropeTheta: 500000,
      ropeScaling: expected,
    });
    expect(parseModelConfig({ ...smolLM2, rope_scaling: { ...llama3, type: 'llama3' } }).ropeScaling).toEqual(expected);
    const { rope_theta: _, rope_scaling: __, ...noRope } = smolLM2;
    expect(parseModelConfig({ ...noRope, rope_parameters: { ...llama3, rope_type: 'llama3', rope_theta: 5e5 } })).toMatchObject({
      ropeTheta: 5e5,
      ropeScaling: expected,
    });
    expect(parseModelConfig(smolLM2).ropeScaling).toBeNull();
  });

  it('rejects other RoPE scalings naming their type, and llama3 scaling with missing or unusable fields', () => {
    expectUnsupported({ ...smolLM2, rope_scaling: { type: 'linear', factor: 2 } }, /"linear"/, /only plain RoPE and Llama 3's "llama3"/);
    expectUnsupported({ ...smolLM2, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, /"dynamic"/);
    expectUnsupported({ ...smolLM2, rope_scaling: { factor: 2 } }, /without a type/);
    expectUnsupported({ ...smolLM2, rope_parameters: { rope_type: 'yarn', rope_theta: 1e4 } }, /"yarn"/);
    const e = expectUnsupported(
      { ...smolLM2, rope_scaling: { rope_type: 'llama3', factor: 8 } },
      /llama3/,
      /"low_freq_factor", which is missing/,
    );
    expect(e.feature).toBe('rope_scaling.low_freq_factor');
    const full = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    expectUnsupported({ ...smolLM2, rope_scaling: { ...full, factor: -1 } }, /rope_scaling\.factor/);
    expectUnsupported({ ...smolLM2, rope_scaling: { ...full, high_freq_factor: 1 } }, /high_freq_factor \(1\) above low_freq_factor \(1\)/);
    expectUnsupported({ ...smolLM2, rope_scaling: { ...full, original_max_position_embeddings: 8192.5 } }, /expected an integer/);
  });

  it('rejects features the engine does not implement', () => {
    expectUnsupported({ ...smolLM2, hidden_act: 'gelu' }, /hidden_act "gelu"/);
    expectUnsupported({ ...smolLM2, attention_bias: true }, /attention_bias/);
    expectUnsupported({ ...smolLM2, mlp_bias: true }, /mlp_bias/);
    expectUnsupported({ ...qwen25, use_sliding_window: true }, /sliding-window/);
  });

  it('rejects missing and invalid sizes, naming the field', () => {
    const { hidden_size: _, ...noHidden } = smolLM2;
    expectUnsupported(noHidden, /"hidden_size" is missing/);
    expectUnsupported({ ...smolLM2, num_hidden_layers: 2.5 }, /"num_hidden_layers" is 2\.5/);
    expectUnsupported({ ...smolLM2, vocab_size: '49152' }, /"vocab_size"/);
    expectUnsupported({ ...smolLM2, num_key_value_heads: 4 }, /multiple of num_key_value_heads/);
    expectUnsupported({ ...smolLM2, rms_norm_eps: -1 }, /rms_norm_eps/);
    expectUnsupported({ ...smolLM2, tie_word_embeddings: 'yes' }, /tie_word_embeddings/);
    expectUnsupported([1, 2], /not a JSON object/);
  });
});

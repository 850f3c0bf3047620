import { describe, expect, it } from 'vitest';
import { ggufModelConfig } from '../../src/gguf/config';
import { gguf, type GgufValue } from '../../src/gguf/values';
import { UnsupportedModelError } from '../../src/model/errors';

/** A SmolLM2-135M-shaped llama file's metadata, and the tensors that matter to the config. */
function smol(overrides: Record<string, GgufValue | undefined> = {}, tensors = ['token_embd.weight', 'blk.0.attn_q.weight']) {
  const base: Record<string, GgufValue> = {
    'general.architecture': gguf.string('llama'),
    'general.type': gguf.string('model'),
    'llama.context_length': gguf.u32(8192),
    'llama.embedding_length': gguf.u32(576),
    'llama.block_count': gguf.u32(30),
    'llama.feed_forward_length': gguf.u32(1536),
    'llama.attention.head_count': gguf.u32(9),
    'llama.attention.head_count_kv': gguf.u32(3),
    'llama.rope.dimension_count': gguf.u32(64),
    'llama.rope.freq_base': gguf.f32(100000),
    'llama.attention.layer_norm_rms_epsilon': gguf.f32(1e-5),
    'tokenizer.ggml.tokens': gguf.strings(Array.from({ length: 49152 }, (_, i) => `t${i}`)),
    'tokenizer.ggml.bos_token_id': gguf.u32(1),
    'tokenizer.ggml.eos_token_id': gguf.u32(2),
  };
  const metadata = new Map<string, GgufValue>();
  for (const [k, v] of Object.entries({ ...base, ...overrides })) if (v !== undefined) metadata.set(k, v);
  return {
    name: 'smol.gguf',
    metadata,
    tensors: new Map(tensors.map((t) => [t, { dims: t === 'token_embd.weight' ? [576, 49152] : [576, 576] }])),
  };
}

function refusal(file: ReturnType<typeof smol>, feature: string, text: RegExp) {
  let caught: unknown;
  try {
    ggufModelConfig(file as never);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(UnsupportedModelError);
  const e = caught as UnsupportedModelError;
  expect(e.feature).toBe(feature);
  expect(e.message).toMatch(text);
  expect(e.message).toMatch(/^smol\.gguf: .*webtune supports Llama-architecture models/);
}

describe('ggufModelConfig', () => {
  it('reads a SmolLM2-shaped llama file: tied embeddings when there is no output.weight', () => {
    expect(ggufModelConfig(smol() as never)).toEqual({
      architecture: 'llama',
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      vocabSize: 49152,
      rmsNormEps: 1e-5,
      ropeTheta: 100000,
      ropeScaling: null,
      tieWordEmbeddings: true,
      qkvBias: false,
      maxPositionEmbeddings: 8192,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
    const untied = ggufModelConfig(smol({}, ['token_embd.weight', 'output.weight']) as never);
    expect(untied.tieWordEmbeddings).toBe(false);
  });

  it('reads a Qwen2 file: q/k/v biases, head_dim from key_length, eot among the stop tokens, per-layer arrays that agree', () => {
    const q = smol({
      'general.architecture': gguf.string('qwen2'),
      'qwen2.context_length': gguf.u32(32768),
      'qwen2.embedding_length': gguf.u32(896),
      'qwen2.block_count': gguf.u32(24),
      'qwen2.feed_forward_length': gguf.i32s(Array(24).fill(4864)),
      'qwen2.attention.head_count': gguf.u32(14),
      'qwen2.attention.head_count_kv': gguf.u32(2),
      'qwen2.attention.key_length': gguf.u32(64),
      'qwen2.rope.freq_base': gguf.f32(1e6),
      'qwen2.attention.layer_norm_rms_epsilon': gguf.f32(1e-6),
      'qwen2.vocab_size': gguf.u32(151936),
      'tokenizer.ggml.bos_token_id': undefined,
      'tokenizer.ggml.eos_token_id': gguf.u32(151645),
      'tokenizer.ggml.eot_token_id': gguf.u32(151645),
    });
    const c = ggufModelConfig(q as never);
    expect(c).toMatchObject({
      architecture: 'qwen2',
      hiddenSize: 896,
      intermediateSize: 4864,
      headDim: 64,
      numKvHeads: 2,
      vocabSize: 151936,
    });
    expect(c).toMatchObject({ qkvBias: true, ropeTheta: 1e6, bosTokenId: null, eosTokenIds: [151645], maxPositionEmbeddings: 32768 });
  });

  it('refuses other architectures, adapters and missing keys, naming them', () => {
    refusal(smol({ 'general.architecture': gguf.string('gemma2') }), 'gemma2', /general\.architecture "gemma2" is not supported/);
    refusal(smol({ 'general.architecture': undefined }), 'general.architecture', /"general\.architecture" is missing/);
    refusal(smol({ 'general.type': gguf.string('adapter') }), 'general.type', /not a base model/);
    refusal(smol({ 'llama.block_count': undefined }), 'llama.block_count', /the required key "llama\.block_count" is missing/);
    refusal(smol({ 'llama.attention.layer_norm_rms_epsilon': undefined }), 'llama.attention.layer_norm_rms_epsilon', /is missing/);
    refusal(smol({ 'llama.context_length': gguf.string('8192') }), 'llama.context_length', /is string "8192", expected a positive integer/);
  });

  it('refuses RoPE it cannot honour: scaling types and factors, frequency factors, partial rotary', () => {
    refusal(
      smol({ 'llama.rope.scaling.type': gguf.string('yarn'), 'llama.rope.scaling.factor': gguf.f32(4) }),
      'llama.rope.scaling.type',
      /RoPE scaling "yarn" with factor 4 is not supported/,
    );
    refusal(
      smol({ 'llama.rope.scaling.type': gguf.string('linear'), 'llama.rope.scaling.factor': gguf.f32(2) }),
      'llama.rope.scaling.type',
      /"linear" with factor 2/,
    );
    refusal(smol({ 'llama.rope.scaling.factor': gguf.f32(8) }), 'llama.rope.scaling.factor', /factor 8/);
    refusal(smol({ 'llama.rope.freq_scale': gguf.f32(0.25) }), 'llama.rope.freq_scale', /rope\.freq_scale 0\.25/);
    refusal(smol({}, ['token_embd.weight', 'rope_freqs.weight']), 'rope_freqs.weight', /Llama 3\.1-style RoPE scaling/);
    refusal(
      smol({ 'llama.rope.dimension_count': gguf.u32(32) }),
      'llama.rope.dimension_count',
      /partial rotary embeddings are not supported/,
    );
    expect(ggufModelConfig(smol({ 'llama.rope.scaling.type': gguf.string('none') }) as never).ropeTheta).toBe(100000);
    expect(
      ggufModelConfig(smol({ 'llama.rope.scaling.type': gguf.string('linear'), 'llama.rope.scaling.factor': gguf.f32(1) }) as never)
        .headDim,
    ).toBe(64);
  });

  it('refuses per-layer sizes that differ, experts, llama biases and GQA that does not divide', () => {
    refusal(smol({ 'llama.attention.head_count_kv': gguf.i32s([3, 3, 9]) }), 'llama.attention.head_count_kv', /differs between layers/);
    refusal(smol({ 'llama.expert_count': gguf.u32(8) }), 'llama.expert_count', /8 experts/);
    refusal(smol({}, ['token_embd.weight', 'blk.0.attn_q.bias']), 'attention_bias', /bias tensors/);
    refusal(
      smol({ 'llama.attention.head_count_kv': gguf.u32(4) }),
      'llama.attention.head_count_kv',
      /9\) is not a multiple of attention\.head_count_kv \(4\)/,
    );
    refusal(smol({ 'llama.attention.value_length': gguf.u32(32) }), 'llama.attention.value_length', /value_length differs/);
  });
});

import { describe, expect, it } from 'vitest';
import { ggufTensorName, hfTensorName } from '../../src/gguf/names';
import { expectedTensorShapes } from '../../src/model/weights';
import { tinyConfig } from '../helpers/tiny-model';

describe('tensor names', () => {
  it('maps every tensor of a Qwen2 model (biases, untied head) to its llama.cpp name and back', () => {
    const names = [...expectedTensorShapes(tinyConfig({ numLayers: 12 })).keys()];
    const gguf = names.map((n) => ggufTensorName(n));
    expect(gguf.slice(0, 5)).toEqual([
      'token_embd.weight',
      'blk.0.attn_norm.weight',
      'blk.0.attn_q.weight',
      'blk.0.attn_k.weight',
      'blk.0.attn_v.weight',
    ]);
    expect(gguf).toContain('blk.11.attn_k.bias');
    expect(gguf).toContain('blk.11.ffn_down.weight');
    expect(gguf.slice(-2)).toEqual(['output_norm.weight', 'output.weight']);
    expect(new Set(gguf).size).toBe(names.length);
    expect(gguf.map((g) => hfTensorName(g!))).toEqual(names);
  });

  it('has no name for tensors outside the llama/qwen2 layout', () => {
    expect(ggufTensorName('model.layers.0.self_attn.rotary_emb.inv_freq')).toBeNull();
    expect(ggufTensorName('model.vision_tower.weight')).toBeNull();
    expect(hfTensorName('rope_freqs.weight')).toBeNull();
    expect(hfTensorName('blk.0.ffn_gate_exps.weight')).toBeNull();
  });
});

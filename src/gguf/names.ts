/**
 * Tensor names: Hugging Face (`model.layers.3.self_attn.q_proj.weight`) <-> GGUF as llama.cpp's
 * convert_hf_to_gguf writes them for the llama and qwen2 architectures (`blk.3.attn_q.weight`).
 * Shapes are the same arrays, listed the other way round: HF [out, in] is GGUF dims [in, out].
 */

const GLOBAL: [hf: string, gguf: string][] = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
];

const LAYER: [hf: string, gguf: string][] = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.q_proj.bias', 'attn_q.bias'],
  ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.bias', 'attn_v.bias'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
];

const HF_TO_GGUF = new Map(GLOBAL);
const GGUF_TO_HF = new Map(GLOBAL.map(([hf, g]) => [g, hf]));
const LAYER_HF_TO_GGUF = new Map(LAYER);
const LAYER_GGUF_TO_HF = new Map(LAYER.map(([hf, g]) => [g, hf]));

/** The GGUF name of a Hugging Face tensor, or null for tensors GGUF llama/qwen2 files do not hold. */
export function ggufTensorName(hfName: string): string | null {
  const global = HF_TO_GGUF.get(hfName);
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const suffix = m && LAYER_HF_TO_GGUF.get(m[2]);
  return suffix ? `blk.${m[1]}.${suffix}` : null;
}

/** The Hugging Face name of a GGUF tensor, or null for others (e.g. `rope_freqs.weight`). */
export function hfTensorName(ggufName: string): string | null {
  const global = GGUF_TO_HF.get(ggufName);
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  const suffix = m && LAYER_GGUF_TO_HF.get(m[2]);
  return suffix ? `model.layers.${m[1]}.${suffix}` : null;
}

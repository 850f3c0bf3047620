/**
 * LoRA adapters as GGUF files for llama.cpp (`--lora`) and Ollama (`ADAPTER file.gguf`), the way
 * llama.cpp's convert_lora_to_gguf.py writes them: F32 `lora_a` / `lora_b` pairs named after the
 * base tensors (`blk.3.attn_q.weight.lora_a`), and `adapter.lora.alpha`, from which llama.cpp
 * computes the scale alpha / r. The bytes come from the GGUF writer (gguf/encode.ts).
 *
 * Layout: the engine trains in the Hugging Face row order; llama-architecture GGUF bases store q/k
 * rows in llama.cpp's interleaved rotary order (gguf/rotary.ts), so B's rows of q and k are
 * permuted the same way, and the adapter then fits any llama GGUF of that model, including the
 * very file it was trained on (whose q/k rows webtune unpermuted when loading it). Qwen2 keeps the
 * Hugging Face order. Given a GGUF base, every adapted tensor is checked to exist in it under that name.
 */
import { encodeGguf, type GgufData, joinParts } from '../gguf/encode';
import type { GgufFile } from '../gguf/file';
import { toInterleaved } from '../gguf/rotary';
import { gguf, type GgufValue } from '../gguf/values';
import { LORA_TARGETS, type LoraTarget } from '../lora/config';
import { peftTensorName } from '../lora/layout';
import type { ModelConfig } from '../model/config';
import { checkAdapterTensors, type AdapterTensors } from './adapter';
import { AdapterExportError } from './errors';

const GGUF_TENSOR: Record<LoraTarget, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function ggufAdapterFile(
  adapter: AdapterTensors,
  model: ModelConfig,
  opts: { name?: string; base?: Pick<GgufFile, 'name' | 'tensors'> } = {},
): Uint8Array {
  const { config, tensors } = adapter;
  const refuse = (problem: string): never => {
    throw new AdapterExportError(`Cannot export the adapter as GGUF: ${problem}.`);
  };
  checkAdapterTensors(tensors, config, model, refuse);
  // llama.cpp always scales by alpha / r; this alpha makes that equal rsLoRA's alpha / sqrt(r).
  const alpha = config.useRslora ? config.alpha * Math.sqrt(config.r) : config.alpha;
  const metadata: [string, GgufValue][] = [
    ['general.architecture', gguf.string(model.architecture)],
    ['general.type', gguf.string('adapter')],
    ['general.name', gguf.string(opts.name ?? 'webtune LoRA adapter')],
    ['general.alignment', gguf.u32(32)],
    ['adapter.type', gguf.string('lora')],
    ['adapter.lora.alpha', gguf.f32(alpha)],
  ];

  const out: GgufData[] = [];
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const target of LORA_TARGETS.filter((t) => config.targets.includes(t))) {
      const base = `blk.${layer}.${GGUF_TENSOR[target]}.weight`;
      if (opts.base && !opts.base.tensors.has(base)) refuse(`the base ${opts.base.name} has no tensor ${base} to adapt`);
      const a = tensors.get(peftTensorName({ layer, target }, 'A'))!;
      const b = tensors.get(peftTensorName({ layer, target }, 'B'))!;
      const [outFeatures, r] = b.shape;
      const permute = model.architecture === 'llama' && (target === 'q_proj' || target === 'k_proj');
      const bData = permute ? toInterleaved(b.data, outFeatures, target === 'q_proj' ? model.numHeads : model.numKvHeads) : b.data;
      // GGUF lists dims innermost first, so the row-major PEFT arrays keep their memory layout.
      out.push({ name: `${base}.lora_a`, dims: [a.shape[1], a.shape[0]], type: 'F32', data: bytesOf(a.data) });
      out.push({ name: `${base}.lora_b`, dims: [r, outFeatures], type: 'F32', data: bytesOf(bData) });
    }
  }
  return joinParts(encodeGguf(metadata, out));
}

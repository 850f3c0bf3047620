/**
 * LoRA adapters as GGUF files for llama.cpp (`--lora`) and Ollama (`ADAPTER file.gguf`), the way
 * llama.cpp's convert_lora_to_gguf.py writes them: F32 `lora_a` / `lora_b` pairs named after the
 * base tensors, and `adapter.lora.alpha`, from which llama.cpp computes the scale alpha / r.
 */
import { LORA_TARGETS, type LoraTarget } from '../lora/config';
import { peftTensorName } from '../lora/layout';
import type { ModelConfig } from '../model/config';
import { checkAdapterTensors, type AdapterTensors } from './adapter';
import { AdapterExportError } from './errors';

const ALIGNMENT = 32;
const GGUF_VERSION = 3;
const TYPE_U32 = 4;
const TYPE_F32 = 6;
const TYPE_STRING = 8;
const GGML_TYPE_F32 = 0;

const GGUF_TENSOR: Record<LoraTarget, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};

/**
 * Reorders the rows of an [out, cols] matrix from the Hugging Face rotary layout (each head's
 * first half rotates with its second half) to llama.cpp's (adjacent rows rotate together), as
 * convert_hf_to_gguf's `permute` does to q/k weights: within head h, row 2j+s comes from row
 * s*(head_dim/2)+j.
 */
export function permuteRowsForRotary(data: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const to = (h * headDim + 2 * j + s) * cols;
        const from = (h * headDim + s * half + j) * cols;
        out.set(data.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

class ByteWriter {
  private bytes = new Uint8Array(1 << 12);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // Each method reserves before touching the buffer, which reserving may replace.
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }

  u64(v: number): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }

  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }

  raw(data: Uint8Array): void {
    const at = this.reserve(data.length);
    this.bytes.set(data, at);
  }

  string(s: string): void {
    const utf8 = new TextEncoder().encode(s);
    this.u64(utf8.length);
    this.raw(utf8);
  }

  padTo(alignment: number): void {
    this.reserve((alignment - (this.length % alignment)) % alignment);
  }

  result(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

type MetadataValue = { type: typeof TYPE_U32 | typeof TYPE_F32; value: number } | { type: typeof TYPE_STRING; value: string };

export function ggufAdapterFile(adapter: AdapterTensors, model: ModelConfig, opts: { name?: string } = {}): Uint8Array {
  const { config, tensors } = adapter;
  checkAdapterTensors(tensors, config, model, (problem) => {
    throw new AdapterExportError(`Cannot export the adapter as GGUF: ${problem}.`);
  });
  // llama.cpp always scales by alpha / r; this alpha makes that equal rsLoRA's alpha / sqrt(r).
  const alpha = config.useRslora ? config.alpha * Math.sqrt(config.r) : config.alpha;
  const metadata: [string, MetadataValue][] = [
    ['general.architecture', { type: TYPE_STRING, value: model.architecture }],
    ['general.type', { type: TYPE_STRING, value: 'adapter' }],
    ['general.name', { type: TYPE_STRING, value: opts.name ?? 'webtune LoRA adapter' }],
    ['general.alignment', { type: TYPE_U32, value: ALIGNMENT }],
    ['adapter.type', { type: TYPE_STRING, value: 'lora' }],
    ['adapter.lora.alpha', { type: TYPE_F32, value: alpha }],
  ];

  const out: { name: string; dims: [number, number]; data: Float32Array }[] = [];
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const target of LORA_TARGETS.filter((t) => config.targets.includes(t))) {
      const a = tensors.get(peftTensorName({ layer, target }, 'A'))!;
      const b = tensors.get(peftTensorName({ layer, target }, 'B'))!;
      const [outFeatures, r] = b.shape;
      let bData = b.data;
      // GGUF llama weights hold q/k in the interleaved rotary layout, so B's rows must match them;
      // Qwen2 GGUF keeps the Hugging Face layout.
      if (model.architecture === 'llama' && (target === 'q_proj' || target === 'k_proj')) {
        bData = permuteRowsForRotary(b.data, outFeatures, r, target === 'q_proj' ? model.numHeads : model.numKvHeads);
      }
      const base = `blk.${layer}.${GGUF_TENSOR[target]}.weight`;
      // GGUF lists dims innermost first, so the row-major PEFT arrays keep their memory layout.
      out.push({ name: `${base}.lora_a`, dims: [a.shape[1], a.shape[0]], data: a.data });
      out.push({ name: `${base}.lora_b`, dims: [r, outFeatures], data: bData });
    }
  }

  const w = new ByteWriter();
  w.raw(new TextEncoder().encode('GGUF'));
  w.u32(GGUF_VERSION);
  w.u64(out.length);
  w.u64(metadata.length);
  for (const [key, entry] of metadata) {
    w.string(key);
    w.u32(entry.type);
    if (entry.type === TYPE_STRING) w.string(entry.value);
    else if (entry.type === TYPE_U32) w.u32(entry.value);
    else w.f32(entry.value);
  }
  const aligned = (n: number) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;
  let offset = 0;
  for (const t of out) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offset = aligned(offset + t.data.byteLength);
  }
  w.padTo(ALIGNMENT);
  for (const t of out) {
    w.raw(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.padTo(ALIGNMENT);
  }
  return w.result();
}

/**
 * A Hugging Face model (ModelConfig, tensors by HF name, tokenizer) as a GGUF base model that
 * llama.cpp and Ollama load: `general.*` and `<arch>.*` hyperparameters under llama.cpp's key
 * names, the tokenizer as `tokenizer.ggml.*` (tokenizer-metadata.ts), and every tensor under its
 * GGUF name with dims innermost first. Llama q/k rows are permuted to llama.cpp's interleaved
 * RoPE layout (rotary.ts). Norms and biases stay F32 (as llama.cpp's converter keeps 1-D
 * tensors); matrices take the requested type, except rows that are not a whole number of its
 * blocks, which fall back to F16 (F32 when F32 is requested), as REFERENCE.md and
 * convert_hf_to_gguf do.
 *
 * The header needs only shapes and types, so the file comes out as a stream of parts: the header,
 * then one tensor at a time (read, permuted, quantized), never the whole model in memory.
 */
import type { ModelConfig } from '../model/config';
import { expectedTensorShapes, type ModelWeightsSource } from '../model/weights';
import { encodeGgufHeader, ggufAlignment, type GgufTensorLayout, tensorPadding } from './encode';
import type { GgmlTypeName } from './ggml-types';
import { ggufTensorName } from './names';
import { fitsBlocks, quantize } from './quants';
import { toInterleaved } from './rotary';
import { ggufTokenizerMetadata, type TokenizerSource } from './tokenizer-metadata';
import { gguf, type GgufValue } from './values';

export interface GgufModelOptions {
  config: ModelConfig;
  weights: Pick<ModelWeightsSource, 'tensor'>;
  tokenizer: Omit<TokenizerSource, 'vocabSize'>;
  /** `tokenizer.*` entries to write as they are instead of converting `tokenizer` (a GGUF base's own). */
  tokenizerMetadata?: [string, GgufValue][];
  /** The type of the matrices (2-D tensors). */
  type: GgmlTypeName;
  /** A per-tensor choice (a quantization mix such as Q4_K with Q6_K for some tensors), by GGUF name. */
  typeFor?: (ggufName: string, shape: readonly number[]) => GgmlTypeName;
  name?: string;
}

/** llama.cpp's `general.file_type` (LLAMA_FTYPE_*) for the matrices' type. */
const FILE_TYPE: Record<GgmlTypeName, number> = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 7,
  Q5_0: 8,
  Q5_1: 9,
  Q4_K: 15,
  Q5_K: 17,
  Q6_K: 18,
  BF16: 32,
};
const QUANTIZED: readonly GgmlTypeName[] = ['Q8_0', 'Q4_0', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

export interface PlannedTensor extends GgufTensorLayout {
  hfName: string;
  shape: number[];
  type: GgmlTypeName;
}

/** Each tensor's GGUF name, dims and type, in file order. */
export function planGgufTensors(opts: Pick<GgufModelOptions, 'config' | 'type' | 'typeFor'>): PlannedTensor[] {
  const planned: PlannedTensor[] = [];
  for (const [hfName, shape] of expectedTensorShapes(opts.config)) {
    const name = ggufTensorName(hfName)!;
    let type: GgmlTypeName = 'F32';
    if (shape.length > 1) {
      const wanted = opts.typeFor?.(name, shape) ?? opts.type;
      const fallback: GgmlTypeName = wanted === 'F32' ? 'F32' : 'F16';
      type = fitsBlocks(wanted, shape[shape.length - 1]) ? wanted : fallback;
    }
    planned.push({ hfName, name, shape, dims: [...shape].reverse(), type });
  }
  return planned;
}

function modelMetadata(opts: GgufModelOptions): [string, GgufValue][] {
  const c = opts.config;
  const a = c.architecture;
  const meta: [string, GgufValue][] = [
    ['general.architecture', gguf.string(a)],
    ['general.type', gguf.string('model')],
    ['general.name', gguf.string(opts.name ?? 'webtune model')],
    ['general.alignment', gguf.u32(32)],
    ['general.file_type', gguf.u32(FILE_TYPE[opts.type])],
  ];
  if (QUANTIZED.includes(opts.type)) meta.push(['general.quantization_version', gguf.u32(2)]);
  meta.push(
    [`${a}.vocab_size`, gguf.u32(c.vocabSize)],
    [`${a}.context_length`, gguf.u32(c.maxPositionEmbeddings)],
    [`${a}.embedding_length`, gguf.u32(c.hiddenSize)],
    [`${a}.block_count`, gguf.u32(c.numLayers)],
    [`${a}.feed_forward_length`, gguf.u32(c.intermediateSize)],
    [`${a}.attention.head_count`, gguf.u32(c.numHeads)],
    [`${a}.attention.head_count_kv`, gguf.u32(c.numKvHeads)],
    [`${a}.attention.key_length`, gguf.u32(c.headDim)],
    [`${a}.attention.value_length`, gguf.u32(c.headDim)],
    [`${a}.rope.dimension_count`, gguf.u32(c.headDim)],
    [`${a}.rope.freq_base`, gguf.f32(c.ropeTheta)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rmsNormEps)],
  );
  meta.push(...(opts.tokenizerMetadata ?? ggufTokenizerMetadata({ ...opts.tokenizer, vocabSize: c.vocabSize })));
  return meta;
}

/** The GGUF file's bytes, part by part: the header, then each tensor's data and padding. */
export async function* ggufModelParts(opts: GgufModelOptions): AsyncGenerator<Uint8Array> {
  const metadata = modelMetadata(opts);
  const tensors = planGgufTensors(opts);
  const alignment = ggufAlignment(metadata);
  yield encodeGgufHeader(metadata, tensors);
  const { config } = opts;
  for (const t of tensors) {
    let values = await opts.weights.tensor(t.hfName, t.shape);
    if (config.architecture === 'llama' && /\.self_attn\.[qk]_proj\.weight$/.test(t.hfName)) {
      values = toInterleaved(values, t.shape[0], t.hfName.includes('q_proj') ? config.numHeads : config.numKvHeads);
    }
    const data = quantize(t.type, values, t.shape[t.shape.length - 1]);
    yield data;
    const pad = tensorPadding(data.length, alignment);
    if (pad.length) yield pad;
  }
}

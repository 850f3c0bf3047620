/**
 * The base model with the adapter merged in (W' = W + scaling * B A, model/merge.ts arithmetic), as
 * one GGUF file that llama.cpp loads and `ollama create` takes with `FROM ./file.gguf`: matrices in
 * F32, F16, BF16 or Q8_0 (rows that Q8_0's 32-value blocks do not fit stay F16), norms and biases F32,
 * the tokenizer and chat template as `tokenizer.*` metadata. From a Hugging Face base the tokenizer
 * is converted (gguf/tokenizer-metadata.ts); from a GGUF base its own `tokenizer.*` entries are
 * copied, so llama.cpp tokenizes the merged model exactly as it tokenized the base.
 *
 * Streamed: the header first, then one tensor at a time (read, merged, permuted, quantized).
 */
import type { GgufFile } from '../gguf/file';
import type { GgmlTypeName } from '../gguf/ggml-types';
import { ggufModelParts } from '../gguf/model-writer';
import { loraScaling } from '../lora/config';
import type { ModelConfig } from '../model/config';
import type { ModelWeightsSource } from '../model/weights';
import { checkAdapterTensors, type AdapterTensors } from './adapter';
import { AdapterExportError } from './errors';
import { mergeAdapterIntoWeights } from './merge';

export type MergedGgufType = 'F32' | 'F16' | 'BF16' | 'Q8_0';
export const MERGED_GGUF_TYPES: readonly MergedGgufType[] = ['F32', 'F16', 'BF16', 'Q8_0'];

export interface MergedGgufBase {
  config: ModelConfig;
  weights: Pick<ModelWeightsSource, 'tensor'>;
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  /** The GGUF file of a GGUF base, whose tokenizer metadata is copied. */
  ggufFile?: Pick<GgufFile, 'metadata'>;
}

export function mergedGgufParts(
  adapter: AdapterTensors,
  base: MergedGgufBase,
  opts: { type: MergedGgufType; name: string },
): AsyncGenerator<Uint8Array> {
  if (!MERGED_GGUF_TYPES.includes(opts.type)) {
    throw new AdapterExportError(`A merged GGUF is written as ${MERGED_GGUF_TYPES.join(', ')}, not ${JSON.stringify(opts.type)}.`);
  }
  const { config } = base;
  checkAdapterTensors(adapter.tensors, adapter.config, config, (problem) => {
    throw new AdapterExportError(`Cannot merge the adapter into the base model: ${problem}.`);
  });
  const scaling = loraScaling(adapter.config);
  const weights: Pick<ModelWeightsSource, 'tensor'> = {
    async tensor(name, shape) {
      const values = await base.weights.tensor(name, shape);
      const a = adapter.tensors.get(`base_model.model.${name.replace(/\.weight$/, '.lora_A.weight')}`);
      const b = adapter.tensors.get(`base_model.model.${name.replace(/\.weight$/, '.lora_B.weight')}`);
      if (!a || !b) return values;
      return mergeAdapterIntoWeights(values, a.data, b.data, shape[0], shape[1], adapter.config.r, scaling);
    },
  };
  const tokenizerMetadata = base.ggufFile ? [...base.ggufFile.metadata].filter(([key]) => key.startsWith('tokenizer.')) : undefined;
  return ggufModelParts({
    config,
    weights,
    tokenizer: { tokenizerJson: base.tokenizerJson, tokenizerConfig: base.tokenizerConfig },
    tokenizerMetadata,
    type: opts.type as GgmlTypeName,
    name: opts.name,
  });
}

/**
 * The per-tensor types llama.cpp's `llama-quantize` picks for Q4_K_M and Q5_K_M (src/llama-quant.cpp,
 * `llama_tensor_get_type_impl` and `tensor_type_fallback`), for the dense llama / qwen2 models
 * webtune trains, so the tests can write the files Ollama and the Hub actually ship (and the
 * benchmark can hold random weights in those types, src/bench/random-weights.ts):
 *
 * - output.weight, or token_embd.weight when the embeddings are tied: Q6_K, or Q8_0 when its rows
 *   are not a multiple of 256;
 * - attn_v and ffn_down of layer i of n: Q6_K when use_more_bits(i, n) (i < n/8, i >= 7n/8, or
 *   (i - n/8) % 3 == 2), else the mix's type (Q4_K or Q5_K);
 * - every other matrix: the mix's type; 1-D tensors stay F32;
 * - then the fallback for rows that are not a whole number of blocks: Q4_K -> Q5_0, Q5_K -> Q5_1,
 *   Q6_K -> Q8_0, and F16 when even that does not fit.
 *
 * stories260K (hidden 64, MLP 172, 5 layers, tied) at Q4_K_M therefore holds no K-quant at all:
 * token_embd Q8_0, attn_v of layers 2 and 4 Q8_0, the other attn_q/k/v/output and ffn_gate/up
 * Q5_0, ffn_down F16 (172 is no multiple of 32), norms F32.
 */
import type { ModelConfig } from '../model/config';
import type { GgmlTypeName } from './ggml-types';
import { fitsBlocks } from './quants';

const FALLBACK: Partial<Record<GgmlTypeName, GgmlTypeName>> = { Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };

const useMoreBits = (i: number, n: number) => i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;

/** `typeFor` for ggufModelParts: the type llama-quantize gives each matrix of `config` in the mix. */
export function llamaCppMix(mix: 'Q4_K_M' | 'Q5_K_M', config: ModelConfig): (ggufName: string, shape: readonly number[]) => GgmlTypeName {
  const base: GgmlTypeName = mix === 'Q4_K_M' ? 'Q4_K' : 'Q5_K';
  return (name, shape) => {
    const cols = shape[shape.length - 1];
    const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
    let type: GgmlTypeName = base;
    if (name === 'output.weight' || (config.tieWordEmbeddings && name === 'token_embd.weight')) type = cols % 256 === 0 ? 'Q6_K' : 'Q8_0';
    else if ((name.includes('attn_v.weight') || name.includes('ffn_down')) && useMoreBits(layer, config.numLayers)) type = 'Q6_K';
    if (!fitsBlocks(type, cols)) type = FALLBACK[type] ?? 'F16';
    return fitsBlocks(type, cols) ? type : 'F16';
  };
}

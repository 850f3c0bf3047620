import type { LoraAdapter } from '../lora/adapter';
import { seededUniform } from '../util/random';
import type { LlamaModel } from '../model/llama';
import type { TextTokenizer } from '../model/tokenizer';
import { makeBatch } from '../train/batch';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP?: number;
  seed?: number;
  /** Stop at the model's end-of-sequence token (default true). */
  stopAtEos?: boolean;
}

export interface Generation {
  promptIds: number[];
  ids: number[];
  text: string;
}

/**
 * Autoregressive generation, recomputing the forward pass over the whole sequence at every step
 * (exact, no KV cache).
 */
export async function generate(
  model: LlamaModel,
  tokenizer: TextTokenizer,
  adapter: LoraAdapter | null,
  prompt: string,
  opts: GenerateOptions,
): Promise<Generation> {
  const promptIds = tokenizer.encode(prompt);
  const ids: number[] = [];
  const random = seededUniform(opts.seed ?? 0);
  const eos = new Set([...tokenizer.eosTokenIds, ...model.config.eosTokenIds]);
  const maxLength = model.config.maxPositionEmbeddings;
  for (let i = 0; i < opts.maxNewTokens && promptIds.length + ids.length < maxLength; i++) {
    const logits = await model.lastPositionLogits(makeBatch([[...promptIds, ...ids]]), adapter);
    const next = opts.temperature > 0 ? sample(logits, opts.temperature, opts.topP ?? 1, random) : argmax(logits);
    if ((opts.stopAtEos ?? true) && eos.has(next)) break;
    ids.push(next);
  }
  // Decoding the continuation alone would lose a leading space (SentencePiece strips it at the
  // start of a text), so decode everything and drop the prompt's part.
  const prefix = tokenizer.decode(promptIds, { skipSpecialTokens: true });
  const full = tokenizer.decode([...promptIds, ...ids], { skipSpecialTokens: true });
  const text = full.startsWith(prefix) ? full.slice(prefix.length) : tokenizer.decode(ids, { skipSpecialTokens: true });
  return { promptIds, ids, text };
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function sample(logits: Float32Array, temperature: number, topP: number, random: () => number): number {
  const max = logits[argmax(logits)];
  const probs = Array.from(logits, (value, id) => ({ id, p: Math.exp((value - max) / temperature) }));
  probs.sort((a, b) => b.p - a.p);
  const total = probs.reduce((sum, x) => sum + x.p, 0);
  let kept = 0;
  let cut = probs.length;
  for (let i = 0; i < probs.length; i++) {
    kept += probs[i].p / total;
    if (kept >= topP) {
      cut = i + 1;
      break;
    }
  }
  const nucleus = probs.slice(0, cut);
  const mass = nucleus.reduce((sum, x) => sum + x.p, 0);
  let r = random() * mass;
  for (const x of nucleus) {
    r -= x.p;
    if (r <= 0) return x.id;
  }
  return nucleus[nucleus.length - 1].id;
}

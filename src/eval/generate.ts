import { chatRenderer, type ChatRenderer } from '../data/chat-template';
import type { PrepTokenizer } from '../data/prepare';
import type { Message } from '../data/types';
import type { LoraWeights } from '../lora/adapter';
import { seededUniform } from '../util/random';
import type { LlamaModel } from '../model/llama';
import type { TextTokenizer } from '../model/tokenizer';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topP?: number;
  seed?: number;
  /** Stop at the model's end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** Called after each new token with the text generated so far (trimmed at its start for chat replies). */
  onToken?: (token: GeneratedToken) => void;
  /**
   * Polled before each new token is chosen: once it returns true generation ends, so a stop that
   * arrives while a token is being computed lets no further token out.
   */
  shouldStop?: () => boolean;
}

export interface GeneratedToken {
  id: number;
  /** How many tokens have been generated, this one included. */
  count: number;
  text: string;
}

export interface Generation {
  promptIds: number[];
  ids: number[];
  text: string;
  /** shouldStop ended it before the end-of-sequence token or the token limit. */
  stopped: boolean;
}

export class GenerationError extends Error {
  override name = 'GenerationError';
}

/**
 * Autoregressive generation with a KV cache: the prompt is run once, then one position per new
 * token, every layer's keys and values kept on the GPU.
 */
export async function generate(
  model: LlamaModel,
  tokenizer: TextTokenizer,
  adapter: LoraWeights | null,
  prompt: string,
  opts: GenerateOptions,
): Promise<Generation> {
  return generateFromIds(model, tokenizer, adapter, tokenizer.encode(prompt), opts);
}

/**
 * The assistant's reply to a conversation: the messages up to the last user turn are rendered
 * with the model's chat template and its generation prompt (as transformers'
 * `apply_chat_template(..., add_generation_prompt=True)`), and the reply is generated from there.
 * Later turns (a reference answer) are left out. The text is trimmed: the whitespace around a
 * reply is the template's layout, not the answer.
 */
export async function generateChat(
  model: LlamaModel,
  tok: PrepTokenizer,
  adapter: LoraWeights | null,
  messages: readonly Message[],
  opts: GenerateOptions,
): Promise<Generation> {
  const prompt = chatPrompt(tok, messages);
  const onToken = opts.onToken;
  const streamed = onToken ? { ...opts, onToken: (t: GeneratedToken) => onToken({ ...t, text: t.text.trimStart() }) } : opts;
  // The rendered text already holds the template's special tokens (BOS included).
  const result = await generateFromIds(model, tok.tokenizer, adapter, tok.tokenizer.encode(prompt, { addSpecialTokens: false }), streamed);
  return { ...result, text: result.text.trim() };
}

/** The text generateChat continues: the messages up to the last user turn, rendered with the generation prompt. */
export function chatPrompt(tok: PrepTokenizer, messages: readonly Message[]): string {
  const lastUser = messages.map((m) => m.role).lastIndexOf('user');
  if (lastUser < 0) throw new GenerationError('the conversation has no user turn to answer');
  return rendererFor(tok).render(messages.slice(0, lastUser + 1), { addGenerationPrompt: true });
}

/** Parsing a Jinja template costs far more than rendering it, and an evaluation renders once per row. */
const renderers = new WeakMap<PrepTokenizer, ChatRenderer>();

function rendererFor(tok: PrepTokenizer): ChatRenderer {
  let renderer = renderers.get(tok);
  if (!renderer) renderers.set(tok, (renderer = chatRenderer(tok)));
  return renderer;
}

async function generateFromIds(
  model: LlamaModel,
  tokenizer: TextTokenizer,
  adapter: LoraWeights | null,
  promptIds: number[],
  opts: GenerateOptions,
): Promise<Generation> {
  if (promptIds.length === 0) throw new GenerationError('the prompt is empty: give at least one token to continue');
  const maxLength = model.config.maxPositionEmbeddings;
  if (promptIds.length >= maxLength) {
    throw new GenerationError(
      `the prompt has ${promptIds.length} tokens; this model reads at most ${maxLength}, so nothing is left to generate`,
    );
  }
  const ids: number[] = [];
  const random = seededUniform(opts.seed ?? 0);
  const eos = new Set([...tokenizer.eosTokenIds, ...model.config.eosTokenIds]);
  const steps = Math.min(opts.maxNewTokens, maxLength - promptIds.length);
  const cache = model.createKvCache(promptIds.length + steps);
  const prefix = tokenizer.decode(promptIds, { skipSpecialTokens: true });
  let stopped = false;
  try {
    let logits = await model.forwardCached(cache, promptIds, adapter);
    for (let i = 0; i < steps; i++) {
      if (opts.shouldStop?.()) {
        stopped = true;
        break;
      }
      const next = opts.temperature > 0 ? sample(logits, opts.temperature, opts.topP ?? 1, random) : argmax(logits);
      if ((opts.stopAtEos ?? true) && eos.has(next)) break;
      ids.push(next);
      opts.onToken?.({ id: next, count: ids.length, text: continuation(tokenizer, promptIds, prefix, ids) });
      if (i + 1 < steps) logits = await model.forwardCached(cache, [next], adapter);
    }
  } finally {
    cache.destroy();
  }
  return { promptIds, ids, text: continuation(tokenizer, promptIds, prefix, ids), stopped };
}

/**
 * The text of `ids` after the prompt. Decoding them alone would lose a leading space (SentencePiece
 * strips it at the start of a text), so everything is decoded and the prompt's part dropped.
 */
function continuation(tokenizer: TextTokenizer, promptIds: number[], prefix: string, ids: number[]): string {
  const full = tokenizer.decode([...promptIds, ...ids], { skipSpecialTokens: true });
  return full.startsWith(prefix) ? full.slice(prefix.length) : tokenizer.decode(ids, { skipSpecialTokens: true });
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

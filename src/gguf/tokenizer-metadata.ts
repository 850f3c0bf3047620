/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) as the `tokenizer.ggml.*`
 * metadata llama.cpp reads, for the two tokenizer kinds of Llama and Qwen2 models:
 *
 * - `llama` (SentencePiece BPE, stored in tokenizer.json as BPE with byte fallback and the "▁"
 *   space marker, e.g. stories260K, TinyLlama): tokens by id, `<0xXX>` byte tokens typed BYTE.
 *   llama.cpp merges the adjacent pair whose joined piece has the highest score, so each piece's
 *   score is minus its id: a SentencePiece vocabulary lists merged pieces in merge order, which
 *   is also the order of tokenizer.json's merges (checked here: a merge list out of id order is
 *   refused rather than tokenized differently).
 * - `gpt2` (byte-level BPE: SmolLM2, Qwen2, Llama 3): tokens, `tokenizer.ggml.merges` as
 *   "left right", and `tokenizer.ggml.pre`, the pre-tokenizer llama.cpp must apply, recognised
 *   from the pre-tokenizer's split pattern (or given by the caller).
 *
 * The vocabulary is padded with `[PADn]` tokens up to the embedding's row count, as
 * convert_hf_to_gguf does. Special tokens come from tokenizer_config.json; the chat template is
 * written as `tokenizer.chat_template` when the model has one.
 */
import { ModelLoadError } from '../model/errors';
import { gguf, type GgufValue } from './values';

/** llama.cpp's token types. */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;
const BYTE = 6;

export type GgufPreTokenizer = 'llama-bpe' | 'qwen2' | 'smollm';

export class TokenizerExportError extends ModelLoadError {
  override name = 'TokenizerExportError';
}

export interface TokenizerSource {
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  /** The model's embedding rows; the token list is padded to it. */
  vocabSize: number;
  /** A chat template from chat_template.jinja, when tokenizer_config.json has none. */
  chatTemplate?: string;
  /** The llama.cpp pre-tokenizer of a byte-level BPE tokenizer, when it is not recognised. */
  pre?: GgufPreTokenizer;
}

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function specialText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isRecord(value) && typeof value.content === 'string') return value.content;
  return null;
}

function fail(problem: string): never {
  throw new TokenizerExportError(`Cannot write the tokenizer to GGUF: ${problem}.`);
}

function chatTemplate(config: Record<string, unknown>, fallback?: string): string | null {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x) => isRecord(x) && x.name === 'default');
    if (isRecord(named) && typeof named.template === 'string') return named.template;
  }
  return fallback ?? null;
}

/** The pre-tokenizer's split regexes and types, flattened (a Sequence nests them). */
function preTokenizerParts(pre: unknown): { types: string[]; patterns: string[] } {
  const types: string[] = [];
  const patterns: string[] = [];
  const walk = (p: unknown) => {
    if (!isRecord(p)) return;
    if (typeof p.type === 'string') types.push(p.type);
    if (Array.isArray(p.pretokenizers)) p.pretokenizers.forEach(walk);
    const pattern = isRecord(p.pattern) ? p.pattern.Regex : undefined;
    if (typeof pattern === 'string') patterns.push(pattern);
  };
  walk(pre);
  return { types, patterns };
}

function detectPre(pre: unknown): GgufPreTokenizer | null {
  const { types, patterns } = preTokenizerParts(pre);
  const regex = patterns.join('\n');
  if (regex.includes('\\p{N}{1,3}')) return 'llama-bpe';
  if (regex.includes("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|")) return 'qwen2';
  if (types.includes('Digits') && types.includes('ByteLevel') && patterns.length === 0) return 'smollm';
  return null;
}

export function ggufTokenizerMetadata(source: TokenizerSource): [string, GgufValue][] {
  const { tokenizerJson: json, tokenizerConfig: config } = source;
  if (!isRecord(json) || !isRecord(json.model)) return fail('tokenizer.json has no "model" object');
  const model = json.model;
  if (model.type !== 'BPE' || !isRecord(model.vocab)) {
    return fail(
      `tokenizer.json holds a ${JSON.stringify(model.type)} model; webtune writes BPE tokenizers (SentencePiece BPE or byte-level BPE)`,
    );
  }
  const added: AddedToken[] = Array.isArray(json.added_tokens)
    ? json.added_tokens.filter(isRecord).map((t) => ({ id: Number(t.id), content: String(t.content), special: t.special === true }))
    : [];
  const tokens: (string | undefined)[] = [];
  for (const [piece, id] of Object.entries(model.vocab)) if (typeof id === 'number') tokens[id] = piece;
  for (const t of added) tokens[t.id] = t.content;
  if (tokens.length > source.vocabSize)
    fail(`the tokenizer has ${tokens.length} tokens but the model's embedding only ${source.vocabSize} rows`);
  // A sparse array: indexOf would skip the holes this looks for.
  for (let id = 0; id < tokens.length; id++) if (tokens[id] === undefined) fail(`token id ${id} is missing from tokenizer.json`);

  const byteFallback = model.byte_fallback === true;
  const byteLevel = preTokenizerParts(json.pre_tokenizer).types.includes('ByteLevel');
  const kind = byteFallback && !byteLevel ? 'llama' : byteLevel && !byteFallback ? 'gpt2' : null;
  if (kind === null) fail('the tokenizer is neither SentencePiece-style BPE (byte fallback) nor byte-level BPE');

  const addedById = new Map(added.map((t) => [t.id, t]));
  const unk = typeof model.unk_token === 'string' ? model.unk_token : null;
  const types: number[] = tokens.map((piece, id) => {
    const a = addedById.get(id);
    if (a) return a.special ? (piece === unk ? UNKNOWN : CONTROL) : USER_DEFINED;
    if (piece === unk) return UNKNOWN;
    if (kind === 'llama' && /^<0x[0-9A-Fa-f]{2}>$/.test(piece!)) return BYTE;
    return NORMAL;
  });
  const count = tokens.length;
  for (let i = count; i < source.vocabSize; i++) {
    tokens.push(`[PAD${i}]`);
    types.push(UNUSED);
  }

  const merges = (Array.isArray(model.merges) ? model.merges : []).map((m) => (Array.isArray(m) ? m.join(' ') : String(m)));
  const meta: [string, GgufValue][] = [['tokenizer.ggml.model', gguf.string(kind)]];
  if (kind === 'llama') {
    const vocab = model.vocab as Record<string, number>;
    let last = -1;
    for (const merge of merges) {
      const id = vocab[merge.replace(' ', '')];
      if (id === undefined || id < last)
        fail(`the merge "${merge}" is out of the vocabulary's order, so SentencePiece scores cannot reproduce it`);
      last = id;
    }
    meta.push(['tokenizer.ggml.tokens', gguf.strings(tokens as string[])]);
    meta.push(['tokenizer.ggml.scores', gguf.f32s(types.map((t, id) => (t === NORMAL ? -id : t === UNUSED ? -1000 : 0)))]);
    meta.push(['tokenizer.ggml.token_type', gguf.i32s(types)]);
  } else {
    const pre = source.pre ?? detectPre(json.pre_tokenizer);
    if (pre === null)
      fail('its byte-level pre-tokenizer is none webtune recognises (Llama 3, Qwen2, SmolLM2); pass the llama.cpp pre-tokenizer name');
    meta.push(['tokenizer.ggml.pre', gguf.string(pre)]);
    meta.push(['tokenizer.ggml.tokens', gguf.strings(tokens as string[])]);
    meta.push(['tokenizer.ggml.token_type', gguf.i32s(types)]);
    meta.push(['tokenizer.ggml.merges', gguf.strings(merges)]);
  }

  const idOf = (key: string): number | null => {
    const text = specialText(config[key]);
    if (text === null) return null;
    const id = tokens.indexOf(text);
    if (id < 0) fail(`tokenizer_config.json names ${key} "${text}", which is not a token`);
    return id;
  };
  const ids: [string, string][] = [
    ['bos_token', 'bos_token_id'],
    ['eos_token', 'eos_token_id'],
    ['unk_token', 'unknown_token_id'],
    ['pad_token', 'padding_token_id'],
  ];
  for (const [key, ggufKey] of ids) {
    const id = idOf(key);
    if (id !== null) meta.push([`tokenizer.ggml.${ggufKey}`, gguf.u32(id)]);
  }
  // The defaults are those of the tokenizer classes: SentencePiece Llama adds BOS, byte-level BPE does not.
  const addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : kind === 'llama';
  meta.push(['tokenizer.ggml.add_bos_token', gguf.bool(addBos)]);
  meta.push(['tokenizer.ggml.add_eos_token', gguf.bool(config.add_eos_token === true)]);
  const template = chatTemplate(config, source.chatTemplate);
  if (template !== null) meta.push(['tokenizer.chat_template', gguf.string(template)]);
  return meta;
}

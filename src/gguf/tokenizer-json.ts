/**
 * A GGUF file's `tokenizer.ggml.*` metadata as the tokenizer.json and tokenizer_config.json objects
 * @huggingface/tokenizers loads, so a GGUF base tokenizes in webtune as llama.cpp tokenizes it:
 *
 * - `llama` (SentencePiece BPE): llama.cpp merges, among adjacent symbols, the pair whose joined
 *   text is a token with the highest score. As a Hugging Face BPE model that is every split of each
 *   token into two tokens, ranked by the joined token's score (what transformers' SentencePiece
 *   converter does), with byte fallback to the `<0xXX>` tokens, "▁" for spaces and a "▁" prefix
 *   when `tokenizer.ggml.add_space_prefix` (default true) says so.
 * - `gpt2` (byte-level BPE): the merges as stored, and the pre-tokenizer named by
 *   `tokenizer.ggml.pre` as the model's own tokenizer.json spells it (llama.cpp reimplements those
 *   regexes to match them): `llama-bpe` (Llama 3), `qwen2` (Qwen2, Qwen2.5), `smollm` (SmolLM2).
 *
 * Token types: CONTROL tokens become special added tokens, USER_DEFINED ones non-special added
 * tokens matched in raw text (as llama.cpp matches them), BYTE, NORMAL and UNUSED (5) ones stay in the vocabulary.
 * What cannot be reproduced exactly (another pre-tokenizer, unknown token types, missing scores,
 * ties in scores, repeated token texts) is listed in `problems`: the tokenizer is then the nearest
 * one webtune can build, and the user can add the model's own tokenizer.json instead.
 */
import { ModelLoadError } from '../model/errors';
import { type GgufMetadata, numberArrayOf, numberOf, stringArrayOf, stringOf } from './values';

const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;
const BYTE = 6;

export interface GgufTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** `llama` (SentencePiece) or `gpt2` (byte-level BPE), as the file says. */
  kind: 'llama' | 'gpt2';
  /** Empty when webtune tokenizes exactly as llama.cpp does; otherwise why it may not, one sentence each. */
  problems: string[];
}

/** The file holds no tokenizer webtune can build; the message says to add tokenizer.json. */
export class GgufTokenizerError extends ModelLoadError {
  override name = 'GgufTokenizerError';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(
      `${file}: ${problem}. Add the model's tokenizer.json (and tokenizer_config.json) from its Hugging Face repository ` +
        'beside the GGUF file, and webtune uses those instead.',
    );
  }
}

const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });

/** llama.cpp's byte-level pre-tokenizers webtune reproduces, with the normalizer and BPE options of their models. */
const PRE_TOKENIZERS: Record<string, { normalizer: unknown; preTokenizer: unknown; ignoreMerges: boolean; addBos: boolean }> = {
  'llama-bpe': {
    normalizer: null,
    preTokenizer: { type: 'Sequence', pretokenizers: [split(LLAMA3_SPLIT), byteLevel(false)] },
    ignoreMerges: true,
    addBos: true,
  },
  qwen2: {
    normalizer: { type: 'NFC' },
    preTokenizer: { type: 'Sequence', pretokenizers: [split(QWEN2_SPLIT), byteLevel(false)] },
    ignoreMerges: false,
    addBos: false,
  },
  smollm: {
    normalizer: null,
    preTokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] },
    ignoreMerges: false,
    addBos: false,
  },
};

export const GGUF_PRE_TOKENIZERS = Object.keys(PRE_TOKENIZERS);

interface Vocabulary {
  tokens: string[];
  types: number[];
  problems: string[];
}

function readVocabulary(metadata: GgufMetadata, fail: (problem: string) => never): Vocabulary {
  const tokens = stringArrayOf(metadata.get('tokenizer.ggml.tokens'));
  if (!tokens || tokens.length === 0) fail('it has no token list (tokenizer.ggml.tokens)');
  const problems: string[] = [];
  let types = numberArrayOf(metadata.get('tokenizer.ggml.token_type'));
  if (!types || types.length !== tokens.length) {
    problems.push('the file lists no token type for each token (tokenizer.ggml.token_type), so special tokens cannot be told apart');
    types = tokens.map(() => NORMAL);
  }
  const unusual = new Set(types.filter((t) => t < NORMAL || t > BYTE));
  if (unusual.size) problems.push(`it has token types webtune does not know (${[...unusual].join(', ')}); they are read as normal tokens`);
  const seen = new Set<string>();
  const repeated = tokens.filter((t) => seen.size === seen.add(t).size);
  if (repeated.length) {
    problems.push(
      `${repeated.length} token texts appear twice (e.g. ${JSON.stringify(repeated[0])}); only the last id of each is produced`,
    );
  }
  return { tokens, types, problems };
}

function tokenId(metadata: GgufMetadata, key: string, count: number): number | null {
  const id = numberOf(metadata.get(`tokenizer.ggml.${key}`));
  return id !== null && Number.isInteger(id) && id >= 0 && id < count ? id : null;
}

function flag(metadata: GgufMetadata, key: string, fallback: boolean): boolean {
  const v = metadata.get(`tokenizer.ggml.${key}`);
  return v && typeof v.value === 'boolean' ? v.value : fallback;
}

function addedTokens(v: Vocabulary): Record<string, unknown>[] {
  const added: Record<string, unknown>[] = [];
  v.types.forEach((type, id) => {
    if (type !== CONTROL && type !== UNKNOWN && type !== USER_DEFINED) return;
    const special = type !== USER_DEFINED;
    added.push({ id, content: v.tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  });
  return added;
}

/** BOS and/or EOS around each sequence, as the file asks llama.cpp to add them. */
function postProcessor(tokens: string[], bos: number | null, eos: number | null): unknown {
  if (bos === null && eos === null) return null;
  const special = (id: number, typeId: number) => ({ SpecialToken: { id: tokens[id], type_id: typeId } });
  const around = (seq: string, typeId: number) => [
    ...(bos !== null ? [special(bos, typeId)] : []),
    { Sequence: { id: seq, type_id: typeId } },
    ...(eos !== null ? [special(eos, typeId)] : []),
  ];
  const specialTokens: Record<string, unknown> = {};
  for (const id of [bos, eos]) if (id !== null) specialTokens[tokens[id]] = { id: tokens[id], ids: [id], tokens: [tokens[id]] };
  return {
    type: 'TemplateProcessing',
    single: around('A', 0),
    pair: [...around('A', 0), ...around('B', 1)],
    special_tokens: specialTokens,
  };
}

/**
 * SentencePiece scores as ranked BPE merges: each NORMAL token's splits into two vocabulary tokens,
 * higher joined score first; splits of one token in order of their parts' ids.
 */
function sentencePieceMerges(v: Vocabulary, scores: ArrayLike<number>, problems: string[]): [string, string][] {
  const ids = new Map<string, number>(v.tokens.map((t, id) => [t, id]));
  const merges: { left: string; right: string; score: number; id: number; l: number; r: number }[] = [];
  const mergedScores = new Map<number, number>();
  v.tokens.forEach((token, id) => {
    if (v.types[id] !== NORMAL) return;
    const chars = Array.from(token);
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      const l = ids.get(left);
      const r = ids.get(right);
      if (l === undefined || r === undefined) continue;
      merges.push({ left, right, score: scores[id], id, l, r });
      mergedScores.set(id, scores[id]);
    }
  });
  const distinct = new Set(mergedScores.values()).size;
  if (distinct < mergedScores.size) {
    problems.push(
      `${mergedScores.size - distinct} merged tokens share a score with another; where two such merges compete, ` +
        'llama.cpp takes the leftmost and webtune the lower token id',
    );
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.l - b.l || a.r - b.r);
  return merges.map((m) => [m.left, m.right]);
}

function sentencePieceTokenizer(metadata: GgufMetadata, v: Vocabulary, problems: string[]): Record<string, unknown> {
  const rawScores = numberArrayOf(metadata.get('tokenizer.ggml.scores'));
  let scores: ArrayLike<number> = rawScores ?? [];
  if (!rawScores || rawScores.length !== v.tokens.length) {
    problems.push('the file has no score for each token (tokenizer.ggml.scores), which SentencePiece merging is ordered by');
    scores = new Float32Array(v.tokens.length);
  }
  const addSpacePrefix = flag(metadata, 'add_space_prefix', true);
  const unk = tokenId(metadata, 'unknown_token_id', v.tokens.length) ?? v.types.indexOf(UNKNOWN);
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, id) => {
    vocab[t] = id;
  });
  const spaces = { type: 'Replace', pattern: { String: ' ' }, content: '▁' };
  return {
    normalizer: { type: 'Sequence', normalizers: [...(addSpacePrefix ? [{ type: 'Prepend', prepend: '▁' }] : []), spaces] },
    pre_tokenizer: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk >= 0 ? v.tokens[unk] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: sentencePieceMerges(v, scores, problems),
    },
  };
}

function byteLevelTokenizer(
  metadata: GgufMetadata,
  v: Vocabulary,
  problems: string[],
  fail: (problem: string) => never,
): Record<string, unknown> {
  const pre = stringOf(metadata.get('tokenizer.ggml.pre')) ?? 'default';
  let family = PRE_TOKENIZERS[pre];
  if (!family) {
    problems.push(
      `its pre-tokenizer "${pre}" (tokenizer.ggml.pre) is not one webtune reproduces (${GGUF_PRE_TOKENIZERS.join(', ')}); ` +
        "text is split with GPT-2's rule instead, so some words may be split differently than llama.cpp splits them",
    );
    family = { normalizer: null, preTokenizer: byteLevel(true), ignoreMerges: false, addBos: false };
  }
  const merges = stringArrayOf(metadata.get('tokenizer.ggml.merges'));
  if (!merges) return fail('its byte-level BPE tokenizer has no merges (tokenizer.ggml.merges)');
  const pairs = merges.map((m) => {
    const at = m.indexOf(' ', 1);
    return [m.slice(0, at), m.slice(at + 1)];
  });
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, id) => {
    vocab[t] = id;
  });
  return {
    normalizer: family.normalizer,
    pre_tokenizer: family.preTokenizer,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: family.ignoreMerges,
      vocab,
      merges: pairs,
    },
  };
}

/** The tokenizer of a GGUF file's metadata; throws GgufTokenizerError when the file holds none webtune can build. */
export function ggufTokenizer(metadata: GgufMetadata, file: string): GgufTokenizer {
  const fail = (problem: string): never => {
    throw new GgufTokenizerError(file, problem);
  };
  const kind = stringOf(metadata.get('tokenizer.ggml.model'));
  if (kind === null) fail('it holds no tokenizer (tokenizer.ggml.model is missing)');
  if (kind !== 'llama' && kind !== 'gpt2') {
    fail(`its tokenizer is of kind "${kind}"; webtune builds SentencePiece ("llama") and byte-level BPE ("gpt2") tokenizers`);
  }
  const v = readVocabulary(metadata, fail);
  const problems = [...v.problems];
  const body = kind === 'llama' ? sentencePieceTokenizer(metadata, v, problems) : byteLevelTokenizer(metadata, v, problems, fail);
  const count = v.tokens.length;
  const bos = tokenId(metadata, 'bos_token_id', count);
  const eos = tokenId(metadata, 'eos_token_id', count);
  const defaultBos = kind === 'llama' || (PRE_TOKENIZERS[stringOf(metadata.get('tokenizer.ggml.pre')) ?? '']?.addBos ?? false);
  const addBos = flag(metadata, 'add_bos_token', defaultBos) && bos !== null;
  const addEos = flag(metadata, 'add_eos_token', false) && eos !== null;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(v),
    ...body,
    post_processor: postProcessor(v.tokens, addBos ? bos : null, addEos ? eos : null),
  };
  const tokenizerConfig: Record<string, unknown> = { add_bos_token: addBos, add_eos_token: addEos };
  const text = (key: string) => {
    const id = tokenId(metadata, key, count);
    return id === null ? null : v.tokens[id];
  };
  for (const [key, ggufKey] of [
    ['bos_token', 'bos_token_id'],
    ['eos_token', 'eos_token_id'],
    ['unk_token', 'unknown_token_id'],
    ['pad_token', 'padding_token_id'],
  ]) {
    const value = text(ggufKey);
    if (value !== null) tokenizerConfig[key] = value;
  }
  const template = stringOf(metadata.get('tokenizer.chat_template'));
  if (template !== null) tokenizerConfig.chat_template = template;
  return { tokenizerJson, tokenizerConfig, kind: kind as GgufTokenizer['kind'], problems };
}

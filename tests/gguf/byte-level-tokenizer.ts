/**
 * A small byte-level BPE tokenizer.json (the GPT-2 kind that SmolLM2, Qwen2 and Llama 3 use): the
 * 256 byte tokens under GPT-2's byte-to-unicode mapping, a few hand-picked merges (digits
 * included, so the pre-tokenizers' digit rules matter), three special tokens, and the
 * pre-tokenizer of the chosen model family as its tokenizer.json spells it.
 */

/** GPT-2's reversible map from bytes to printable unicode characters. */
function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = '!'.charCodeAt(0); b <= '~'.charCodeAt(0); b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  return map;
}

const MERGES = [
  'Ġ t',
  'h e',
  'Ġt he',
  'i n',
  'in g',
  'Ġ a',
  'n d',
  'Ġa nd',
  'e r',
  'o n',
  'Ġ s',
  'Ġ w',
  'a s',
  'Ġw as',
  'l e',
  't le',
  'Ġ l',
  'i t',
  'Ġl it',
  'Ġlit tle',
  '1 2',
  '12 3',
  'Ġ 1',
  "' s",
  "' t",
  'Ċ Ċ',
  'Ġ Ġ',
  'o u',
  'Ġ y',
  'Ġy ou',
];

const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export type ByteLevelFamily = 'qwen2' | 'llama3' | 'smollm2';

function preTokenizer(family: ByteLevelFamily): unknown {
  const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
  const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  if (family === 'smollm2') return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] };
  return { type: 'Sequence', pretokenizers: [split(family === 'qwen2' ? QWEN2_SPLIT : LLAMA3_SPLIT), byteLevel(false)] };
}

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

export function byteLevelTokenizer(family: ByteLevelFamily): {
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  size: number;
} {
  const vocab: Record<string, number> = {};
  for (const [b, c] of byteToUnicode().entries()) vocab[c] = b;
  for (const merge of MERGES) {
    const [a, b] = merge.split(' ');
    if (!(a in vocab) || !(b in vocab)) throw new Error(`merge "${merge}" uses a token that does not exist yet`);
    vocab[a + b] = Object.keys(vocab).length;
  }
  const first = Object.keys(vocab).length;
  const added = SPECIAL_TOKENS.map((content, i) => ({
    id: first + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: family === 'qwen2' ? { type: 'NFC' } : null,
    pre_tokenizer: preTokenizer(family),
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: family === 'llama3',
      vocab,
      merges: MERGES.map((m) => m.split(' ')),
    },
  };
  const tokenizerConfig = {
    eos_token: '<|endoftext|>',
    bos_token: null,
    add_bos_token: false,
    chat_template: "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
  };
  return { tokenizerJson, tokenizerConfig, size: first + added.length };
}

/**
 * The tokenizer webtune builds from a GGUF file's `tokenizer.ggml.*` metadata, judged twice: by
 * real llama.cpp (node-llama-cpp) tokenizing the same file, and by the Hugging Face tokenizer.json
 * the file was written from. SentencePiece (stories260K) and the byte-level BPE families
 * (Qwen2, Llama 3, SmolLM2) are reproduced exactly; files webtune cannot reproduce say why.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryByteSource } from '../../src/gguf/byte-source';
import { collectParts } from './helpers';
import { openGguf } from '../../src/gguf/file';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { ggufTokenizer, GgufTokenizerError } from '../../src/gguf/tokenizer-json';
import { gguf, type GgufMetadata } from '../../src/gguf/values';
import type { ModelConfig } from '../../src/model/config';
import { nodeFileSource } from '../../src/model/node-file-source';
import { TextTokenizer } from '../../src/model/tokenizer';
import { type OpenedModel, openModel } from '../../src/model/weights';
import { STORIES_260K } from '../helpers/paths';
import { type ByteLevelFamily, byteLevelTokenizer } from './byte-level-tokenizer';
import { llamaCppTokenize, writeGguf } from './llama-cpp';
import { randomWeights } from './quantized-models';

const TEXTS = [
  'Once upon a time, there was a little girl named Lily.',
  "\n\nShe wasn't   there.\tYou see 1 2 3? 12345!",
  'Élan café 🙂 naïve — and the end',
  '  leading spaces, trailing ones  ',
  'Zoë\'s 3 cats said: "hi"\n\tok',
];

let dir: string;
let stories: OpenedModel;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-gguf-tok-'));
  stories = await openModel(nodeFileSource(STORIES_260K));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const tinyConfig = (vocabSize: number): ModelConfig => ({
  architecture: 'llama',
  hiddenSize: 64,
  intermediateSize: 96,
  numLayers: 1,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  tieWordEmbeddings: true,
  qkvBias: false,
  maxPositionEmbeddings: 128,
  bosTokenId: 1,
  eosTokenIds: [2],
});

/** A one-layer random model carrying `tokenizer`, as a GGUF file on disk and its metadata. */
async function fileWith(name: string, tokenizer: { tokenizerJson: unknown; tokenizerConfig: Record<string, unknown> }, vocab: number) {
  const config = tinyConfig(vocab);
  const parts = ggufModelParts({ config, weights: randomWeights(config, 3), tokenizer, type: 'F32' });
  const bytes = await collectParts(parts);
  const file = await writeGguf(path.join(dir, name), [bytes]);
  return { file, metadata: (await openGguf(memoryByteSource(bytes, name))).metadata };
}

describe('SentencePiece (stories260K) from tokenizer.ggml.*', () => {
  it('encodes and decodes as the tokenizer.json it was written from, and as llama.cpp', async () => {
    const source = { tokenizerJson: stories.tokenizerJson, tokenizerConfig: stories.tokenizerConfig };
    const { file, metadata } = await fileWith('stories-tok.gguf', source, stories.config.vocabSize);
    const built = ggufTokenizer(metadata, file);
    expect(built.kind).toBe('llama');
    expect(built.problems).toEqual([]);
    expect(built.tokenizerConfig).toMatchObject({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true });
    const ours = TextTokenizer.fromJson(built.tokenizerJson, built.tokenizerConfig);
    const hf = TextTokenizer.fromJson(stories.tokenizerJson, stories.tokenizerConfig);
    expect(ours.bosTokenId).toBe(1);
    expect(ours.eosTokenIds).toEqual([2]);
    // More text for the Hugging Face comparison than llama.cpp needs: every merge of the vocabulary in play.
    const corpus = [...TEXTS, 'the cat sat on the mat and looked at the big red ball that Tim had thrown over the fence'];
    for (const text of corpus) {
      const ids = ours.encode(text);
      expect(ids, text).toEqual(hf.encode(text));
      expect(ours.decode(ids, { skipSpecialTokens: true })).toBe(hf.decode(ids, { skipSpecialTokens: true }));
    }
    for (const text of TEXTS) expect((await llamaCppTokenize(file, text)).ids, text).toEqual(ours.encode(text));
  });
});

describe('byte-level BPE from tokenizer.ggml.* and tokenizer.ggml.pre', () => {
  for (const [family, pre] of [
    ['qwen2', 'qwen2'],
    ['llama3', 'llama-bpe'],
    ['smollm2', 'smollm'],
  ] as [ByteLevelFamily, string][]) {
    it(`${family} ("${pre}"): token ids equal llama.cpp's on the same file and the original tokenizer.json's`, async () => {
      const tok = byteLevelTokenizer(family);
      const { file, metadata } = await fileWith(`${family}.gguf`, tok, tok.size);
      const built = ggufTokenizer(metadata, file);
      expect(built.kind).toBe('gpt2');
      expect(built.problems).toEqual([]);
      expect(built.tokenizerConfig.chat_template).toBe(tok.tokenizerConfig.chat_template);
      const ours = TextTokenizer.fromJson(built.tokenizerJson, built.tokenizerConfig);
      const hf = TextTokenizer.fromJson(tok.tokenizerJson, tok.tokenizerConfig);
      for (const text of TEXTS) {
        const ids = ours.encode(text);
        expect(
          ids.some((id) => id >= 256),
          'the merges apply',
        ).toBe(true);
        expect(ids, `${family}: ${JSON.stringify(text)}`).toEqual(hf.encode(text));
        expect((await llamaCppTokenize(file, text)).ids, `${family}: ${JSON.stringify(text)}`).toEqual(ids);
        expect(ours.decode(ids)).toBe(text);
      }
      // Special tokens in rendered chat text are single tokens, as the chat template path needs.
      expect(ours.encode('<|im_start|>user', { addSpecialTokens: false })[0]).toBe(tok.size - 2);
    });
  }
});

describe('what cannot be reproduced is said, with what to do', () => {
  const base = async () => {
    const tok = byteLevelTokenizer('qwen2');
    return (await fileWith('qwen2-edit.gguf', tok, tok.size)).metadata;
  };
  const edited = (metadata: GgufMetadata, key: string, value: Parameters<GgufMetadata['set']>[1] | null): GgufMetadata => {
    const copy = new Map(metadata);
    if (value === null) copy.delete(key);
    else copy.set(key, value);
    return copy;
  };

  it('an unknown pre-tokenizer or unknown token types: a usable tokenizer, with the reason it may differ', async () => {
    const metadata = await base();
    const other = ggufTokenizer(edited(metadata, 'tokenizer.ggml.pre', gguf.string('deepseek-llm')), 'x.gguf');
    expect(other.problems.join(' ')).toMatch(/pre-tokenizer "deepseek-llm".*not one webtune reproduces/);
    expect(TextTokenizer.fromJson(other.tokenizerJson, other.tokenizerConfig).encode('hello there').length).toBeGreaterThan(0);
    const types = Int32Array.from((metadata.get('tokenizer.ggml.token_type')!.value as { items: Int32Array }).items);
    types[100] = 9;
    const odd = ggufTokenizer(edited(metadata, 'tokenizer.ggml.token_type', gguf.i32s(types)), 'x.gguf');
    expect(odd.problems.join(' ')).toMatch(/token types webtune does not know \(9\)/);
  });

  it('no tokenizer, another kind, or byte-level BPE without merges: GgufTokenizerError naming the file and tokenizer.json', async () => {
    const metadata = await base();
    const cases: [GgufMetadata, RegExp][] = [
      [edited(metadata, 'tokenizer.ggml.model', null), /holds no tokenizer/],
      [edited(metadata, 'tokenizer.ggml.model', gguf.string('bert')), /kind "bert"/],
      [edited(metadata, 'tokenizer.ggml.merges', null), /no merges/],
      [edited(metadata, 'tokenizer.ggml.tokens', null), /no token list/],
    ];
    for (const [m, pattern] of cases) {
      expect(() => ggufTokenizer(m, 'model.gguf')).toThrow(GgufTokenizerError);
      expect(() => ggufTokenizer(m, 'model.gguf')).toThrow(pattern);
      expect(() => ggufTokenizer(m, 'model.gguf')).toThrow(/^model\.gguf: .*Add the model's tokenizer\.json/);
    }
  });
});

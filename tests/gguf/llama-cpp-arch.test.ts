/**
 * The other paths of the GGUF writer, judged by real llama.cpp: a Qwen2 model (q/k/v biases, no
 * q/k permutation, tied embeddings) gives llama.cpp webtune's next-token distribution, and
 * byte-level BPE tokenizers of the three families webtune targets (Qwen2, Llama 3, SmolLM2)
 * written as `tokenizer.ggml.model = gpt2` with their `tokenizer.ggml.pre` tokenize in llama.cpp
 * as @huggingface/tokenizers does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { nodeByteSource } from '../../src/gguf/node-byte-source';
import { openGgufModel } from '../../src/gguf/weights';
import type { ModelConfig } from '../../src/model/config';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { TextTokenizer } from '../../src/model/tokenizer';
import { expectedTensorShapes, type OpenedModel, openModel } from '../../src/model/weights';
import { testGpu } from '../helpers/gpu';
import { STORIES_260K } from '../helpers/paths';
import { byteLevelTokenizer, type ByteLevelFamily } from './byte-level-tokenizer';
import { llamaCppDistributions, llamaCppGreedy, llamaCppTokenize, maxAbsDiff, webtuneDistributions, writeGguf } from './llama-cpp';
import { randomWeights } from './quantized-models';

let dir: string;
let stories: OpenedModel;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-llamacpp-arch-'));
  stories = await openModel(nodeFileSource(STORIES_260K));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const config = (overrides: Partial<ModelConfig>): ModelConfig => ({
  architecture: 'qwen2',
  hiddenSize: 64,
  intermediateSize: 96,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 512,
  rmsNormEps: 1e-6,
  ropeTheta: 1e6,
  ropeScaling: null,
  tieWordEmbeddings: true,
  qkvBias: true,
  maxPositionEmbeddings: 128,
  bosTokenId: 1,
  eosTokenIds: [2],
  ...overrides,
});

describe('Qwen2 GGUF in llama.cpp', () => {
  it("gives webtune's next-token distribution; q/k rows are stored as in Hugging Face, biases under attn_*.bias", async () => {
    const qwen = config({});
    const weights = randomWeights(qwen, 500);
    const tokenizer = { tokenizerJson: stories.tokenizerJson, tokenizerConfig: stories.tokenizerConfig };
    const file = await writeGguf(path.join(dir, 'qwen2.gguf'), ggufModelParts({ config: qwen, weights, tokenizer, type: 'F32' }));

    const opened = await openGgufModel(await nodeByteSource(file));
    expect(opened.config).toEqual({ ...qwen, rmsNormEps: Math.fround(1e-6) });
    for (const [name, shape] of expectedTensorShapes(qwen)) {
      expect(Array.from(await opened.weights.tensor(name, shape)), name).toEqual(Array.from(await weights.tensor(name, shape)));
    }
    expect(opened.file.tensors.has('blk.1.attn_k.bias')).toBe(true);
    expect(opened.file.tensors.has('output.weight')).toBe(false);

    const promptIds = TextTokenizer.fromJson(stories.tokenizerJson, stories.tokenizerConfig).encode('Once upon a time');
    const ids = [...promptIds, ...(await llamaCppGreedy(file, promptIds, 12)).ids];
    const model = await LlamaModel.load(await testGpu(), weights);
    const dp = maxAbsDiff(await llamaCppDistributions(file, ids, qwen.vocabSize), await webtuneDistributions(model, ids));
    console.info(`random Qwen2 F32: max |Δp| llama.cpp vs webtune over ${ids.length} positions = ${dp.toExponential(2)}`);
    expect(dp).toBeLessThan(1e-4);
  });
});

describe('byte-level BPE tokenizers in llama.cpp', () => {
  const texts = [
    'Once upon a time, the little girl said: "I\'m 12 and 12345!"',
    "\n\nShe wasn't   there.\tYou see 1 2 3?",
    'Élan café 🙂 naïve — and the end',
  ];
  for (const [family, pre] of [
    ['qwen2', 'qwen2'],
    ['llama3', 'llama-bpe'],
    ['smollm2', 'smollm'],
  ] as [ByteLevelFamily, string][]) {
    it(`${family}: written with tokenizer.ggml.pre "${pre}", llama.cpp tokenizes as @huggingface/tokenizers`, async () => {
      const tok = byteLevelTokenizer(family);
      const model = config({ architecture: 'llama', qkvBias: false, vocabSize: tok.size, numLayers: 1 });
      const file = await writeGguf(
        path.join(dir, `${family}-tok.gguf`),
        ggufModelParts({ config: model, weights: randomWeights(model, 7), tokenizer: tok, type: 'F32' }),
      );
      const opened = await openGgufModel(await nodeByteSource(file));
      expect(opened.file.metadata.get('tokenizer.ggml.pre')?.value).toBe(pre);
      expect(opened.file.metadata.get('tokenizer.ggml.model')?.value).toBe('gpt2');
      expect(opened.file.metadata.get('tokenizer.chat_template')?.value).toContain('<|im_start|>');
      const hf = TextTokenizer.fromJson(tok.tokenizerJson, tok.tokenizerConfig);
      for (const text of texts) {
        const ours = hf.encode(text);
        expect(
          ours.some((id) => id >= 256),
          'the merges apply',
        ).toBe(true);
        const theirs = await llamaCppTokenize(file, text);
        expect(theirs.ids, `${family}: ${JSON.stringify(text)}`).toEqual(ours);
        expect(theirs.text).toBe(text);
      }
    });
  }

  it('tells the families apart: a SmolLM2 tokenizer written with the Llama 3 pre-tokenizer tokenizes digits differently', async () => {
    const tok = byteLevelTokenizer('smollm2');
    const model = config({ architecture: 'llama', qkvBias: false, vocabSize: tok.size, numLayers: 1 });
    const file = await writeGguf(
      path.join(dir, 'wrong-pre.gguf'),
      ggufModelParts({ config: model, weights: randomWeights(model, 7), tokenizer: { ...tok, pre: 'llama-bpe' }, type: 'F32' }),
    );
    const text = texts[0];
    expect((await llamaCppTokenize(file, text)).ids).not.toEqual(
      TextTokenizer.fromJson(tok.tokenizerJson, tok.tokenizerConfig).encode(text),
    );
  });
});

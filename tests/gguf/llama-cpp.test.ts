/**
 * Our GGUF files judged by real llama.cpp (node-llama-cpp 3.21.1, CPU build): stories260K as F32,
 * Q8_0, F16 and BF16 generates what webtune generates from the Hugging Face folder, with the same
 * next-token probabilities; and on files quantized by our quantizer, llama.cpp's distribution
 * matches its distribution on F32 files holding our CPU dequantization of the same blocks, and
 * webtune's on the GGUF as our loader reads it.
 *
 * The quantized bound is not 1e-3: llama.cpp's CPU matmuls round the activations to 8 bits
 * (Q8_0 / Q8_K) before the dot product with quantized weights, which moves these small models'
 * probabilities by up to ~3e-2 (measured: Q8_0 1.9e-2, Q4_0 1.1e-2, Q4_K/Q5_K/Q6_K 2.9e-2,
 * stories260K at Q4_K_M, i.e. Q5_0/Q8_0/F16, 1.1e-2), while
 * the F32 twin is evaluated in f32. That the blocks themselves are read identically is proven bit
 * for bit against ggml's own dequantizers in ggml-dequantize.test.ts; here a control whose blocks
 * are read in the wrong order moves the distribution by ~1, far beyond the bound. Nothing is
 * downloaded: the models are stories260K from ../shared and a small random model written here.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, type Generation } from '../../src/eval/generate';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { TextTokenizer } from '../../src/model/tokenizer';
import { type OpenedModel, openModel } from '../../src/model/weights';
import type { GgmlTypeName } from '../../src/gguf/ggml-types';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { nodeByteSource } from '../../src/gguf/node-byte-source';
import { openGguf } from '../../src/gguf/file';
import { openGgufModel } from '../../src/gguf/weights';
import { testGpu } from '../helpers/gpu';
import { STORIES_260K } from '../helpers/paths';
import { llamaCppMix } from '../../src/gguf/quant-mix';
import { f32Twin, kQuantModel, type ModelSpec, storiesSpec, useStoriesTokenizer } from './quantized-models';
import { llamaCppDistributions, llamaCppGreedy, llamaCppTokenize, maxAbsDiff, webtuneDistributions, writeGguf } from './llama-cpp';

const PROMPT = 'Once upon a time';
const STEPS = 20;

let dir: string;
let stories: OpenedModel;
let tokenizer: TextTokenizer;
let webtune: LlamaModel;
let greedy: Generation;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-llamacpp-'));
  stories = await openModel(nodeFileSource(STORIES_260K));
  tokenizer = TextTokenizer.fromJson(stories.tokenizerJson, stories.tokenizerConfig);
  useStoriesTokenizer(storiesSpec(stories).tokenizer);
  webtune = await LlamaModel.load(await testGpu(), stories.weights);
  greedy = await generate(webtune, tokenizer, null, PROMPT, { maxNewTokens: STEPS, temperature: 0 });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const writeModel = (spec: ModelSpec, type: GgmlTypeName, name: string, typeFor?: Parameters<typeof ggufModelParts>[0]['typeFor']) =>
  writeGguf(path.join(dir, name), ggufModelParts({ ...spec, type, typeFor }));

describe('stories260K in llama.cpp', () => {
  it('tokenizes and detokenizes as the Hugging Face tokenizer does', async () => {
    const file = await writeModel(storiesSpec(stories), 'F32', 'tok.gguf');
    for (const text of [PROMPT, 'Lily and Ben went to the park. They played!', 'Zoë\'s 3 cats said: "hi"\n\tok', '  two  spaces']) {
      const ours = tokenizer.encode(text);
      const theirs = await llamaCppTokenize(file, text);
      expect(theirs.ids, text).toEqual(ours);
      expect(theirs.text).toBe(tokenizer.decode(ours, { skipSpecialTokens: true }));
    }
  });

  for (const type of ['F32', 'Q8_0', 'F16', 'BF16'] as const) {
    it(`${type}: llama.cpp's greedy continuation of "${PROMPT}" equals webtune's from the Hugging Face folder`, async () => {
      const file = await writeModel(storiesSpec(stories), type, `stories-${type}.gguf`);
      expect(greedy.text.startsWith(', there was a little girl named Lily')).toBe(true);
      expect(greedy.ids).toHaveLength(STEPS);
      const theirs = await llamaCppGreedy(file, greedy.promptIds, STEPS);
      expect(theirs.ids).toEqual(greedy.ids);
      expect(theirs.text).toBe(greedy.text);
    });
  }

  it('F32: llama.cpp next-token probabilities equal webtune softmax(logits) at every position', async () => {
    const file = await writeModel(storiesSpec(stories), 'F32', 'stories-probs.gguf');
    const ids = [...greedy.promptIds, ...greedy.ids];
    const dp = maxAbsDiff(await llamaCppDistributions(file, ids, stories.config.vocabSize), await webtuneDistributions(webtune, ids));
    console.info(`stories260K F32: max |Δp| llama.cpp vs webtune over ${ids.length} positions = ${dp.toExponential(2)}`);
    expect(dp).toBeLessThan(1e-4);
  });
});

describe('our quantized blocks read by llama.cpp as by our dequantizer', () => {
  const cases: {
    label: string;
    spec: () => ModelSpec;
    type: 'Q8_0' | 'Q4_0' | 'Q4_K';
    typeFor?: Parameters<typeof ggufModelParts>[0]['typeFor'];
    bound: number;
    /** Tensors per type the file must hold. */
    mix?: Record<string, number>;
  }[] = [
    { label: 'stories260K Q8_0', spec: () => storiesSpec(stories), type: 'Q8_0', bound: 3e-2 },
    { label: 'stories260K Q4_0', spec: () => storiesSpec(stories), type: 'Q4_0', bound: 2e-2 },
    {
      label: 'stories260K Q4_K_M as llama-quantize makes it (no row fits a K-quant: its fallbacks Q5_0, Q8_0 and F16)',
      spec: () => storiesSpec(stories),
      type: 'Q4_K',
      typeFor: (name, shape) => llamaCppMix('Q4_K_M', stories.config)(name, shape),
      bound: 2e-2,
      mix: { Q5_0: 28, Q8_0: 3, F16: 5, F32: 11 },
    },
    {
      label: 'random 256-wide llama, Q4_K with Q6_K (attn_v, ffn_down, output) and Q5_K (attn_output)',
      spec: kQuantModel,
      type: 'Q4_K',
      typeFor: (name) => (/attn_v|ffn_down|^output\./.test(name) ? 'Q6_K' : name.includes('attn_output') ? 'Q5_K' : 'Q4_K'),
      bound: 5e-2,
    },
  ];

  for (const c of cases) {
    it(`${c.label}: llama.cpp on the quantized file = llama.cpp on its F32 twin (our dequantization) = webtune on the file`, async () => {
      const spec = c.spec();
      const slug = c.label.split(' ').slice(0, 2).join('-');
      const quantized = await writeModel(spec, c.type, `${slug}-${c.type}.gguf`, c.typeFor);
      if (c.mix) {
        const held: Record<string, number> = {};
        for (const t of (await openGguf(await nodeByteSource(quantized))).tensors.values())
          held[t.type.name] = (held[t.type.name] ?? 0) + 1;
        expect(held).toEqual(c.mix);
      }
      const twin = await writeGguf(path.join(dir, `${slug}-twin.gguf`), await f32Twin(quantized));
      const scrambled = await writeGguf(path.join(dir, `${slug}-scrambled.gguf`), await f32Twin(quantized, { reverseBlocks: true }));

      const promptIds = tokenizer.encode(PROMPT);
      const ids = [...promptIds, ...(await llamaCppGreedy(twin, promptIds, STEPS)).ids];
      const vocab = spec.config.vocabSize;
      const onQuantized = await llamaCppDistributions(quantized, ids, vocab);
      const onTwin = await llamaCppDistributions(twin, ids, vocab);
      const dp = maxAbsDiff(onQuantized, onTwin);
      // A dequantizer that misplaces values inside each block moves the distribution by far more.
      const control = maxAbsDiff(onQuantized, await llamaCppDistributions(scrambled, ids, vocab));

      const opened = await openGgufModel(await nodeByteSource(quantized));
      const model = await LlamaModel.load(await testGpu(), opened.weights);
      const ours = await webtuneDistributions(model, ids);
      const dpWebtuneTwin = maxAbsDiff(ours, onTwin);
      const dpWebtuneQuantized = maxAbsDiff(ours, onQuantized);
      console.info(
        `${c.label}: max |Δp| over ${ids.length} positions: llama.cpp quantized vs F32 twin ${dp.toExponential(2)} ` +
          `(scrambled control ${control.toExponential(2)}); webtune on the GGUF vs llama.cpp twin ${dpWebtuneTwin.toExponential(2)}, ` +
          `vs llama.cpp quantized ${dpWebtuneQuantized.toExponential(2)}`,
      );
      expect(dp).toBeLessThan(c.bound);
      expect(control).toBeGreaterThan(20 * dp);
      expect(dpWebtuneTwin).toBeLessThan(1e-4);
      expect(dpWebtuneQuantized).toBeLessThan(c.bound);
    });
  }
});

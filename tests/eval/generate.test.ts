import { describe, expect, it } from 'vitest';
import { chatRenderer, chatSettingsFromConfig } from '../../src/data/chat-template';
import type { Message } from '../../src/data/types';
import { argmax, generate, generateChat, GenerationError } from '../../src/eval/generate';
import { LoraAdapter } from '../../src/lora/adapter';
import { LORA_TARGETS, validateLoraConfig } from '../../src/lora/config';
import { LlamaModel } from '../../src/model/llama';
import { KvCacheError } from '../../src/model/kv-cache';
import { nodeFileSource } from '../../src/model/node-file-source';
import { TextTokenizer } from '../../src/model/tokenizer';
import { openModel } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { STORIES_260K } from '../helpers/paths';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';

async function stories() {
  const opened = await openModel(nodeFileSource(STORIES_260K));
  const tokenizer = TextTokenizer.fromJson(opened.tokenizerJson, opened.tokenizerConfig);
  const model = await LlamaModel.load(await testGpu(), opened.weights);
  return { opened, tokenizer, model };
}

/** An adapter on every projection whose A and B are both random, so it changes every layer's output. */
function randomAdapter(model: LlamaModel, seed: number, scale: number): LoraAdapter {
  const adapter = new LoraAdapter(model.gpu, model.config, validateLoraConfig({ r: 3, alpha: 5, targets: [...LORA_TARGETS] }));
  model.gpu.write(adapter.params, randomArray(adapter.layout.totalFloats, seed, -scale, scale));
  return adapter;
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let size = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    size = Math.max(size, Math.abs(expected[i]));
  }
  return diff / size;
}

/**
 * Greedy decoding both ways: the cached path (prefill in `chunks`, then one token per step) and the
 * full forward over the whole sequence at every step. Returns both token lists and the worst
 * relative logits difference over all steps.
 */
async function cachedVersusRecompute(model: LlamaModel, adapter: LoraAdapter | null, prompt: number[], steps: number, chunks = 1) {
  const cache = model.createKvCache(prompt.length + steps);
  const cachedIds: number[] = [];
  const recomputedIds: number[] = [];
  let worst = 0;
  try {
    let logits!: Float32Array;
    const size = Math.ceil(prompt.length / chunks);
    for (let start = 0; start < prompt.length; start += size) {
      logits = await model.forwardCached(cache, prompt.slice(start, start + size), adapter);
    }
    for (let i = 0; i < steps; i++) {
      const reference = await model.lastPositionLogits(makeBatch([[...prompt, ...recomputedIds]]), adapter);
      worst = Math.max(worst, relativeError(logits, reference));
      cachedIds.push(argmax(logits));
      recomputedIds.push(argmax(reference));
      if (i + 1 < steps) logits = await model.forwardCached(cache, [cachedIds[i]], adapter);
    }
  } finally {
    cache.destroy();
  }
  return { cachedIds, recomputedIds, worst };
}

describe('greedy generation with the pretrained stories260K', () => {
  it('continues "Once upon a time" exactly as the reference implementation does', async () => {
    const { tokenizer, model } = await stories();
    const result = await generate(model, tokenizer, null, 'Once upon a time', { maxNewTokens: 27, temperature: 0 });
    expect(result.ids).toHaveLength(27);
    expect(result.text).toBe(', there was a little girl named Lily. She loved to play outside in the park.');
  });
});

describe('KV-cache generation equals recomputing the whole sequence', () => {
  it('stories260K base: same greedy tokens, logits within 1e-4 relative at every step', async () => {
    const { tokenizer, model } = await stories();
    const prompt = tokenizer.encode('Once upon a time, there was a little');
    const run = await cachedVersusRecompute(model, null, prompt, 30);
    expect(run.cachedIds).toEqual(run.recomputedIds);
    expect(run.worst).toBeLessThan(1e-4);
    const generated = await generate(model, tokenizer, null, 'Once upon a time, there was a little', {
      maxNewTokens: 30,
      temperature: 0,
      stopAtEos: false,
    });
    expect(generated.ids).toEqual(run.recomputedIds);
  });

  it('stories260K with a random adapter (B non-zero) on every projection, prompt prefilled in 3 chunks', async () => {
    const { tokenizer, model } = await stories();
    const adapter = randomAdapter(model, 11, 0.15);
    const prompt = tokenizer.encode('Once upon a time, there was a little');
    const base = await cachedVersusRecompute(model, null, prompt, 20);
    const run = await cachedVersusRecompute(model, adapter, prompt, 20, 3);
    expect(run.cachedIds).toEqual(run.recomputedIds);
    expect(run.worst).toBeLessThan(1e-4);
    // The adapter is really applied on the cached path: it changes what the model says.
    expect(run.cachedIds).not.toEqual(base.cachedIds);
  });

  it('a random GQA model with q/k/v biases (3 heads on 1 kv head), with and without an adapter', async () => {
    const config = tinyConfig();
    const model = await LlamaModel.load(await testGpu(), memoryWeightsSource(config, tinyWeights(config, 5)));
    const prompt = [1, 7, 30, 4, 22, 9, 13];
    for (const adapter of [null, randomAdapter(model, 12, 0.3)]) {
      const run = await cachedVersusRecompute(model, adapter, prompt, 25, 2);
      expect(run.cachedIds).toEqual(run.recomputedIds);
      expect(run.worst).toBeLessThan(1e-4);
    }
  });

  it('refuses tokens beyond the cache capacity', async () => {
    const { model } = await stories();
    const cache = model.createKvCache(4);
    try {
      await model.forwardCached(cache, [1, 2, 3], null);
      await expect(model.forwardCached(cache, [4, 5], null)).rejects.toThrow(KvCacheError);
    } finally {
      cache.destroy();
    }
  });
});

describe('chat-template generation', () => {
  const messages: Message[] = [
    { role: 'system', content: 'Context:\n[1] Zog is a green dragon.' },
    { role: 'user', content: 'Who is Zog?' },
    { role: 'assistant', content: 'Zog is a green dragon [1].' },
  ];

  it('renders the conversation up to the last user turn with the generation prompt and answers from there', async () => {
    const { opened, tokenizer, model } = await stories();
    const tok = { tokenizer, ...chatSettingsFromConfig(opened.tokenizerConfig) };
    const prompt = chatRenderer(tok).render(messages.slice(0, 2), { addGenerationPrompt: true });
    expect(prompt.endsWith('User: Who is Zog?\n\nAssistant:')).toBe(true);
    const reply = await generateChat(model, tok, null, messages, { maxNewTokens: 12, temperature: 0 });
    expect(reply.promptIds).toEqual(tokenizer.encode(prompt, { addSpecialTokens: false }));
    expect(reply.promptIds[0]).toBe(tokenizer.bosTokenId);
    // Same tokens as plain generation from the rendered prompt.
    const plain = await generate(model, tokenizer, null, prompt.slice('<s>'.length), { maxNewTokens: 12, temperature: 0 });
    expect(reply.ids).toEqual(plain.ids);
    expect(reply.text).toBe(plain.text.trim());
    expect(reply.text.length).toBeGreaterThan(0);
  });

  it('samples reproducibly with a seed (temperature, top-p)', async () => {
    const { opened, tokenizer, model } = await stories();
    const tok = { tokenizer, ...chatSettingsFromConfig(opened.tokenizerConfig) };
    const opts = { maxNewTokens: 16, temperature: 1.2, topP: 0.95 };
    const a = await generateChat(model, tok, null, messages, { ...opts, seed: 1 });
    const again = await generateChat(model, tok, null, messages, { ...opts, seed: 1 });
    const others = [];
    for (const seed of [2, 3, 4]) others.push(await generateChat(model, tok, null, messages, { ...opts, seed }));
    expect(again.ids).toEqual(a.ids);
    expect(others.some((o) => o.ids.join() !== a.ids.join())).toBe(true);
  });

  it('needs a user turn to answer', async () => {
    const { opened, tokenizer, model } = await stories();
    const tok = { tokenizer, ...chatSettingsFromConfig(opened.tokenizerConfig) };
    await expect(generateChat(model, tok, null, [{ role: 'system', content: 'Hi' }], { maxNewTokens: 2, temperature: 0 })).rejects.toThrow(
      GenerationError,
    );
  });
});

describe('streaming and stopping', () => {
  it('reports every token with the text so far, the last report being the result', async () => {
    const { tokenizer, model } = await stories();
    const seen: { id: number; count: number; text: string }[] = [];
    const result = await generate(model, tokenizer, null, 'Once upon a time', {
      maxNewTokens: 12,
      temperature: 0,
      onToken: (t) => seen.push(t),
    });
    expect(seen.map((t) => t.id)).toEqual(result.ids);
    expect(seen.map((t) => t.count)).toEqual(result.ids.map((_, i) => i + 1));
    for (const [i, t] of seen.entries()) if (i > 0) expect(t.text.startsWith(seen[i - 1].text.trimEnd())).toBe(true);
    expect(seen.at(-1)!.text).toBe(result.text);
    expect(result.stopped).toBe(false);
  });

  it('a stop asked for during token k lets no token after k out', async () => {
    const { opened, tokenizer, model } = await stories();
    const tok = { tokenizer, ...chatSettingsFromConfig(opened.tokenizerConfig) };
    let stop = false;
    const counts: number[] = [];
    const messages: Message[] = [{ role: 'user', content: 'Tell me a story about a cat.' }];
    const result = await generateChat(model, tok, null, messages, {
      maxNewTokens: 40,
      temperature: 0,
      stopAtEos: false,
      shouldStop: () => stop,
      onToken: (t) => {
        counts.push(t.count);
        if (t.count === 3) stop = true;
      },
    });
    expect(counts).toEqual([1, 2, 3]);
    expect(result.ids).toHaveLength(3);
    expect(result.stopped).toBe(true);
    // A stop before the first token: nothing at all.
    const none = await generateChat(model, tok, null, messages, { maxNewTokens: 5, temperature: 0, shouldStop: () => true });
    expect(none).toMatchObject({ ids: [], text: '', stopped: true });
  });
});

/**
 * Real llama.cpp (node-llama-cpp's prebuilt CPU build) as the judge of our GGUF files: load a
 * file, run greedy decoding, read the next-token distribution at every position. Contexts use an
 * f32 KV cache and no flash attention, so an F32 file is evaluated in f32 throughout, and one
 * thread: these models are tiny, and ggml's spinning worker threads slow a decode step from
 * milliseconds to most of a second on a machine whose cores are busy with other work.
 */
import { writeFile } from 'node:fs/promises';
import { getLlama, type Llama, type LlamaModel as LlamaCppModel, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { joinParts } from '../../src/gguf/encode';
import type { LoraWeights } from '../../src/lora/adapter';
import type { LlamaModel } from '../../src/model/llama';

/** A GGUF LoRA to apply to the context, at llama.cpp's scale 1 (alpha / r from the file). */
export interface LlamaCppOptions {
  lora?: string;
}

let llama: Promise<Llama> | null = null;

export function llamaCpp(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, progressLogs: false });
  return llama;
}

export async function writeGguf(file: string, parts: Uint8Array[] | AsyncIterable<Uint8Array>): Promise<string> {
  const list: Uint8Array[] = [];
  for await (const p of parts) list.push(p);
  await writeFile(file, joinParts(list));
  return file;
}

async function withModel<T>(file: string, run: (model: LlamaCppModel) => Promise<T>): Promise<T> {
  const model = await (await llamaCpp()).loadModel({ modelPath: file });
  try {
    return await run(model);
  } finally {
    await model.dispose();
  }
}

async function withSequence<T>(
  file: string,
  opts: LlamaCppOptions,
  run: (model: LlamaCppModel, seq: ReturnType<Awaited<ReturnType<LlamaCppModel['createContext']>>['getSequence']>) => Promise<T>,
): Promise<T> {
  return withModel(file, async (model) => {
    const context = await model.createContext({
      contextSize: 128,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
      lora: opts.lora ? { adapters: [{ filePath: opts.lora, scale: 1 }] } : undefined,
    });
    try {
      return await run(model, context.getSequence());
    } finally {
      await context.dispose();
    }
  });
}

/** llama.cpp's tokens for `text` (BOS first when the file says to add it) and their detokenization. */
export function llamaCppTokenize(file: string, text: string): Promise<{ ids: number[]; text: string }> {
  return withModel(file, async (model) => {
    const ids: number[] = model.tokenize(text);
    const bos = model.tokens.bos;
    return { ids: model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...ids] : ids, text: model.detokenize(ids as Token[]) };
  });
}

/** `steps` greedy tokens after `promptIds`, and the text llama.cpp makes of them. */
export function llamaCppGreedy(
  file: string,
  promptIds: number[],
  steps: number,
  opts: LlamaCppOptions = {},
): Promise<{ ids: number[]; text: string }> {
  return withSequence(file, opts, async (model, seq) => {
    const ids: number[] = [];
    for await (const token of seq.evaluate(promptIds as Token[], { temperature: 0 })) {
      ids.push(token);
      if (ids.length >= steps) break;
    }
    const prompt = promptIds.filter((id) => id !== model.tokens.bos) as Token[];
    const full = model.detokenize([...prompt, ...ids] as Token[]);
    return { ids, text: full.slice(model.detokenize(prompt).length) };
  });
}

/** The next-token distribution after each prefix ids[0..t], t = 0..ids.length - 1: [positions][vocab]. */
export function llamaCppDistributions(file: string, ids: number[], vocab: number, opts: LlamaCppOptions = {}): Promise<Float64Array[]> {
  return withSequence(file, opts, async (_model, seq) => {
    const results = await seq.controlledEvaluate(ids.map((id) => [id as Token, { generateNext: { probabilities: true } }]));
    return results.map((r, t) => {
      const p = new Float64Array(vocab);
      const probabilities = r?.next?.probabilities;
      if (!probabilities) throw new Error(`llama.cpp returned no probabilities at position ${t}`);
      for (const [token, prob] of probabilities) p[token] = prob;
      return p;
    });
  });
}

/** webtune's next-token distribution after each prefix ids[0..t], softmax of its logits in float64. */
export async function webtuneDistributions(model: LlamaModel, ids: number[], adapter: LoraWeights | null = null): Promise<Float64Array[]> {
  const cache = model.createKvCache(ids.length);
  try {
    const out: Float64Array[] = [];
    for (const id of ids) {
      const logits = await model.forwardCached(cache, [id], adapter);
      const max = Math.max(...logits);
      const p = Float64Array.from(logits, (l) => Math.exp(l - max));
      const sum = p.reduce((a, b) => a + b, 0);
      out.push(p.map((v) => v / sum));
    }
    return out;
  } finally {
    cache.destroy();
  }
}

/** max over positions and tokens of |p - q|. */
export function maxAbsDiff(p: Float64Array[], q: Float64Array[]): number {
  let worst = 0;
  for (const [t, row] of p.entries()) {
    for (const [i, v] of row.entries()) worst = Math.max(worst, Math.abs(v - q[t][i]));
  }
  return worst;
}

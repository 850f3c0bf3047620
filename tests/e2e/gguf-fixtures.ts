/**
 * GGUF files of stories260K for the page tests, written here (nothing downloaded): llama-quantize's
 * Q4_K_M mix (tests/gguf/quant-mix.ts; for stories260K that is Q5_0, Q8_0 and F16), and an Ollama
 * store holding it as a blob.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { joinParts } from '../../src/gguf/encode';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { writeOllamaStore } from '../gguf/ollama-store';
import { llamaCppMix } from '../../src/gguf/quant-mix';
import { MODEL_DIR } from './helpers';

export const Q4_K_M_FILE = 'stories260K-Q4_K_M.gguf';

/** stories260K at Q4_K_M as `<dir>/stories260K-Q4_K_M.gguf`; returns its path and bytes. */
export async function writeStoriesQ4KM(dir: string): Promise<{ file: string; bytes: Uint8Array }> {
  const stories = await openModel(nodeFileSource(MODEL_DIR));
  const parts: Uint8Array[] = [];
  const opts = { config: stories.config, weights: stories.weights, tokenizer: stories, type: 'Q4_K' as const };
  for await (const part of ggufModelParts({ ...opts, typeFor: llamaCppMix('Q4_K_M', stories.config) })) parts.push(part);
  const bytes = joinParts(parts);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, Q4_K_M_FILE);
  await writeFile(file, bytes);
  return { file, bytes };
}

/** An Ollama models folder `<dir>/models` holding `bytes` as the model `name`. */
export async function writeStore(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const store = path.join(dir, 'models');
  await writeOllamaStore(store, [{ name, gguf: bytes }]);
  return store;
}

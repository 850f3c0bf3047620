import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { AdapterTensors } from '../../src/export/adapter';
import { type LoraConfig, validateLoraConfig } from '../../src/lora/config';
import { peftTensorName, planLoraLayout } from '../../src/lora/layout';
import { type ModelConfig, parseModelConfig } from '../../src/model/config';
import { readSafetensors } from '../../src/model/safetensors';

/** Shared fixtures sit beside the repository and are read in place, never copied into it. */
export const SHARED = path.resolve(__dirname, '../../../shared');
export const STORIES_DIR = path.join(SHARED, 'models/stories260K');
export const GOLDEN_CASE_DIR = path.join(SHARED, 'golden/stories260K-qkv-r4');

export async function storiesConfig(): Promise<ModelConfig> {
  return parseModelConfig(JSON.parse(await readFile(path.join(STORIES_DIR, 'config.json'), 'utf8')));
}

export function qwen2Config(overrides: Record<string, unknown> = {}): ModelConfig {
  return parseModelConfig({
    model_type: 'qwen2',
    architectures: ['Qwen2ForCausalLM'],
    hidden_size: 48,
    intermediate_size: 80,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    vocab_size: 100,
    ...overrides,
  });
}

/** The golden case's r=4 q/k/v adapter (lora_alpha 8 per its case.json), B non-zero. */
export async function goldenAdapter(): Promise<AdapterTensors> {
  const bytes = new Uint8Array(await readFile(path.join(GOLDEN_CASE_DIR, 'adapter_init.safetensors')));
  const caseJson = JSON.parse(await readFile(path.join(GOLDEN_CASE_DIR, 'case.json'), 'utf8'));
  const config = validateLoraConfig({ r: caseJson.lora.r, alpha: caseJson.lora.lora_alpha, targets: caseJson.lora.target_modules });
  const tensors = new Map(
    [...readSafetensors(bytes, 'adapter_init.safetensors').tensors].map(([n, t]) => [n, { shape: t.shape, data: t.data }]),
  );
  return { config, tensors };
}

/** Deterministic pseudo-random values in [-1, 1). */
export function randomValues(n: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

export function randomAdapter(model: ModelConfig, lora: Partial<LoraConfig> = {}, seed = 1): AdapterTensors {
  const config = validateLoraConfig({ r: 4, alpha: 8, ...lora });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const module of planLoraLayout(model, config).modules) {
    tensors.set(peftTensorName(module, 'A'), {
      shape: [config.r, module.inFeatures],
      data: randomValues(config.r * module.inFeatures, seed++),
    });
    tensors.set(peftTensorName(module, 'B'), {
      shape: [module.outFeatures, config.r],
      data: randomValues(module.outFeatures * config.r, seed++),
    });
  }
  return { config, tensors };
}

const temps: string[] = [];

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `webtune-export-${prefix}-`));
  temps.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** Runs `fn` and checks it fails with an error of `type` whose message contains every fragment. */
export async function expectRefusal(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
  ...fragments: (string | RegExp)[]
): Promise<Error> {
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(type);
  const message = (error as Error).message;
  for (const f of fragments) {
    if (typeof f === 'string') expect(message).toContain(f);
    else expect(message).toMatch(f);
  }
  return error as Error;
}

export function expectBitIdentical(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  expect(
    Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(
      Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength),
    ),
  ).toBe(true);
}

/** f16 bits of a value that f16 represents exactly. */
export function halfBits(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}

/** A safetensors file with tensors of any dtype (the project writer only writes F32). */
export function rawTensors(
  tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[],
  metadata = { format: 'pt' },
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { measureLoadHeap } from '../../src/bench/heap-check';
import { writeRandomCheckpoint } from '../../src/bench/random-checkpoint';
import { testGpu } from '../helpers/gpu';

const MiB = 2 ** 20;
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** 50M parameters: a 101 MB BF16 checkpoint whose largest tensor, the 16,384 × 768 embedding, is 25 MB. */
const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 768,
  intermediate_size: 2048,
  num_hidden_layers: 6,
  num_attention_heads: 12,
  num_key_value_heads: 4,
  vocab_size: 16384,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
};

describe('check-heap', () => {
  it('loads a 100 MB BF16 checkpoint onto the GPU with JS memory bounded by its largest tensor, not by its size', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'webtune-heap-test-'));
    dirs.push(dir);
    const bytes = await writeRandomCheckpoint(dir, CONFIG);
    expect(bytes).toBeGreaterThan(100 * 1e6);
    const report = await measureLoadHeap(await testGpu(), dir);
    expect(report.checkpoint_bytes).toBe(bytes);
    expect(report.largest_tensor).toMatchObject({ name: 'model.embed_tokens.weight', bytes: 16384 * 768 * 2 });
    const layer = 2 * 768 * 768 + 2 * 256 * 768 + 3 * 2048 * 768 + 2 * 768;
    // Weight matrices stay BF16 on the GPU (the checkpoint's own precision); norm weights become f32.
    const norms = 2 * 6 * 768 + 768;
    expect(report.weights_on_gpu_bytes).toBe((16384 * 768 + 6 * layer + 768 - norms) * 2 + norms * 4);
    // One tensor at a time: at most its BF16 bytes and their f32 conversion (the f32 upload path; a
    // 16-bit upload keeps less), with room for the garbage collector's timing. Reading the whole file would
    // alone exceed it. Measured here: 75.7 MB of ArrayBuffers, 2.4 MB of heap.
    expect(report.growth.array_buffers).toBeLessThanOrEqual(3 * report.largest_tensor.bytes + 16 * MiB);
    expect(report.growth.array_buffers).toBeLessThan(bytes);
    expect(report.growth.heap_used).toBeLessThan(16 * MiB);
  });
});

import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numpyPermute } from '../reference/rotary-permute';
import { memoryByteSource } from '../../src/gguf/byte-source';
import { openGguf } from '../../src/gguf/file';
import { ggufModelParts, planGgufTensors } from '../../src/gguf/model-writer';
import { dequantize } from '../../src/gguf/quants';
import { openGgufModel } from '../../src/gguf/weights';
import { stringArrayOf } from '../../src/gguf/values';
import { MissingTensorError, TensorShapeError, UnsupportedModelError } from '../../src/model/errors';
import { nodeFileSource } from '../../src/model/node-file-source';
import { expectedTensorShapes, type OpenedModel, openModel } from '../../src/model/weights';
import { STORIES_260K } from '../helpers/paths';
import { collectParts } from './helpers';

let stories: OpenedModel;
let dir: string;
beforeAll(async () => {
  stories = await openModel(nodeFileSource(STORIES_260K));
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-gguf-model-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const storiesGguf = (type: 'F32' | 'Q8_0' | 'F16') =>
  collectParts(
    ggufModelParts({
      config: stories.config,
      weights: stories.weights,
      tokenizer: { tokenizerJson: stories.tokenizerJson, tokenizerConfig: stories.tokenizerConfig },
      type,
      name: 'stories260K',
    }),
  );

describe('GGUF base model writer and reader', () => {
  it('stories260K -> F32 GGUF -> back: same config, every tensor bit for bit (q/k permuted in the file, unpermuted on load)', async () => {
    const bytes = await storiesGguf('F32');
    const opened = await openGgufModel(memoryByteSource(bytes, 'stories260K.gguf'));
    expect(opened.config).toEqual({ ...stories.config, rmsNormEps: Math.fround(stories.config.rmsNormEps) });
    for (const [name, shape] of expectedTensorShapes(stories.config)) {
      const hf = await stories.weights.tensor(name, shape);
      expect(Array.from(await opened.weights.tensor(name, shape)), name).toEqual(Array.from(hf));
      expect(opened.weights.types.get(name)).toBe('F32');
    }
    // In the file, q/k rows sit in llama.cpp's interleaved layout: the adapter export's permutation of the HF rows.
    const c = stories.config;
    for (const [proj, heads, rows] of [
      ['q', c.numHeads, c.numHeads * c.headDim],
      ['k', c.numKvHeads, c.numKvHeads * c.headDim],
    ] as const) {
      const hf = await stories.weights.tensor(`model.layers.2.self_attn.${proj}_proj.weight`, [rows, c.hiddenSize]);
      const t = opened.file.tensors.get(`blk.2.attn_${proj}.weight`)!;
      expect(t.dims).toEqual([c.hiddenSize, rows]);
      const raw = dequantize('F32', await opened.file.readTensorBytes(t), t.elements);
      expect(Array.from(raw)).toEqual(Array.from(numpyPermute(hf, rows, c.hiddenSize, heads)));
      expect(Array.from(raw)).not.toEqual(Array.from(hf));
    }
  });

  it("writes what Hugging Face's GGUF reader and llama.cpp's key names expect", async () => {
    const file = path.join(dir, 'stories-f32.gguf');
    await writeFile(file, await storiesGguf('F32'));
    const { metadata, tensorInfos } = await hfGguf(file, { allowLocalFile: true });
    const m = metadata as Record<string, unknown>;
    expect(m['general.architecture']).toBe('llama');
    expect(m['llama.block_count']).toBe(5);
    expect(m['llama.attention.head_count_kv']).toBe(4);
    expect(m['llama.rope.dimension_count']).toBe(8);
    expect(m['tokenizer.ggml.model']).toBe('llama');
    expect((m['tokenizer.ggml.tokens'] as string[]).slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect((m['tokenizer.ggml.token_type'] as number[]).slice(0, 4)).toEqual([2, 3, 3, 6]);
    expect(m['tokenizer.ggml.bos_token_id']).toBe(1);
    expect(m['tokenizer.ggml.eos_token_id']).toBe(2);
    expect(tensorInfos.map((t) => t.name)).not.toContain('output.weight');
    expect(tensorInfos.find((t) => t.name === 'token_embd.weight')!.shape.map(Number)).toEqual([64, 512]);
    expect(tensorInfos).toHaveLength(expectedTensorShapes(stories.config).size);
  });

  it('Q8_0: matrices of whole-block rows are Q8_0, ffn_down (rows of 172) F16, norms F32; stored() gives unpermuted blocks', async () => {
    const plan = new Map(planGgufTensors({ config: stories.config, type: 'Q8_0' }).map((t) => [t.name, t.type]));
    expect(plan.get('token_embd.weight')).toBe('Q8_0');
    expect(plan.get('blk.0.attn_q.weight')).toBe('Q8_0');
    expect(plan.get('blk.0.ffn_gate.weight')).toBe('Q8_0');
    expect(plan.get('blk.0.ffn_down.weight')).toBe('F16');
    expect(plan.get('blk.0.attn_norm.weight')).toBe('F32');
    // K-quants need rows of 256: stories260K (rows of 64 and 172) has no tensor that takes one.
    const kPlan = planGgufTensors({ config: stories.config, type: 'Q4_K' });
    expect(kPlan.filter((t) => t.type === 'Q4_K')).toEqual([]);
    expect(new Set(kPlan.map((t) => t.type))).toEqual(new Set(['F16', 'F32']));
    const opened = await openGgufModel(memoryByteSource(await storiesGguf('Q8_0'), 'stories-q8.gguf'));
    expect(opened.weights.types.get('model.layers.0.mlp.down_proj.weight')).toBe('F16');
    const c = stories.config;
    const name = 'model.layers.1.self_attn.k_proj.weight';
    const shape = [c.numKvHeads * c.headDim, c.hiddenSize];
    const stored = await opened.weights.stored(name, shape);
    expect(stored.type).toBe('Q8_0');
    const values = await opened.weights.tensor(name, shape);
    expect(Array.from(dequantize('Q8_0', stored.bytes, values.length))).toEqual(Array.from(values));
    // Close to the f32 weights: Q8_0 keeps each value within half a step of its 32-value block.
    const hf = await stories.weights.tensor(name, shape);
    const worst = Math.max(...Array.from(values, (v, i) => Math.abs(v - hf[i])));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(Math.max(...Array.from(hf, Math.abs)) / 127);
  });

  it('refuses a GGUF whose tensors do not fit its metadata, or are stored in a type webtune cannot read', async () => {
    const bytes = await storiesGguf('F32');
    // Claim 6 layers: blk.5 is missing.
    const patched = bytes.slice();
    const at = Buffer.from(patched).indexOf(Buffer.from('llama.block_count')) + 'llama.block_count'.length + 4;
    new DataView(patched.buffer).setUint32(at, 6, true);
    await expect(openGgufModel(memoryByteSource(patched, 'six.gguf'))).rejects.toThrow(MissingTensorError);
    await expect(openGgufModel(memoryByteSource(patched, 'six.gguf'))).rejects.toThrow(
      /six\.gguf has no tensor "blk\.5\.attn_norm\.weight".*than the file's own metadata/,
    );
    await expect(openGgufModel(memoryByteSource(patched, 'six.gguf'))).rejects.not.toThrow(/config\.json/);
    const wide = bytes.slice();
    const ffAt = Buffer.from(wide).indexOf(Buffer.from('llama.feed_forward_length')) + 'llama.feed_forward_length'.length + 4;
    new DataView(wide.buffer).setUint32(ffAt, 171, true);
    await expect(openGgufModel(memoryByteSource(wide, 'wide.gguf'))).rejects.toThrow(TensorShapeError);
    await expect(openGgufModel(memoryByteSource(wide, 'wide.gguf'))).rejects.toThrow(/but the file's own metadata .*implies .*damaged/);
    // Tensor type id 3 (Q4_1) on a 64-wide row is a valid GGUF, but not a type webtune dequantizes.
    const file = await openGguf(memoryByteSource(bytes, 'x.gguf'));
    const q = file.tensors.get('blk.0.attn_norm.weight')!;
    const typeAt =
      Buffer.from(bytes).indexOf(Buffer.from('blk.0.attn_norm.weight')) + 'blk.0.attn_norm.weight'.length + 4 + 8 * q.dims.length;
    const q41 = bytes.slice();
    new DataView(q41.buffer).setUint32(typeAt, 3, true);
    await expect(openGgufModel(memoryByteSource(q41, 'q41.gguf'))).rejects.toThrow(UnsupportedModelError);
    await expect(openGgufModel(memoryByteSource(q41, 'q41.gguf'))).rejects.toThrow(/"blk\.0\.attn_norm\.weight" is stored as Q4_1/);
  });

  it('writes the tokenizer as llama.cpp reads it: scores in merge order, the chat template when the model has one', async () => {
    const parts = ggufModelParts({
      config: stories.config,
      weights: stories.weights,
      tokenizer: {
        tokenizerJson: stories.tokenizerJson,
        tokenizerConfig: { ...stories.tokenizerConfig, chat_template: '{{ messages[0].content }}' },
      },
      type: 'F16',
    });
    const file = await openGguf(memoryByteSource(await collectParts(parts), 'tpl.gguf'));
    expect(file.metadata.get('tokenizer.chat_template')?.value).toBe('{{ messages[0].content }}');
    const tokens = stringArrayOf(file.metadata.get('tokenizer.ggml.tokens'))!;
    const tokenizer = JSON.parse(await readFile(path.join(STORIES_260K, 'tokenizer.json'), 'utf8'));
    expect(tokens).toHaveLength(512);
    for (const [piece, id] of Object.entries(tokenizer.model.vocab)) expect(tokens[id as number]).toBe(piece);
    const scores = file.metadata.get('tokenizer.ggml.scores')!.value as { items: Float32Array };
    // Earlier merges win: "▁t" (259) outranks "he" (260).
    expect(scores.items[259]).toBeGreaterThan(scores.items[260]);
  });
});

/**
 * The merged model as one GGUF file (export service, format `merged-gguf`), judged by real llama.cpp
 * (node-llama-cpp 3.21.1): it loads, generates what webtune generates, and with a non-zero adapter
 * gives webtune's base + adapter next-token distribution. From a GGUF base the file keeps the
 * base's own tokenizer metadata. Nothing is downloaded: stories260K and the golden adapter from
 * ../shared.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, type Generation } from '../../src/eval/generate';
import type { AdapterTensors } from '../../src/export/adapter';
import { writeFolder } from '../../src/export/node-folder';
import { type ExportBase, exportAdapter } from '../../src/export/service';
import { openGgufBase, type OpenedGgufBase } from '../../src/gguf/base';
import { memoryByteSource } from '../../src/gguf/byte-source';
import { openGguf } from '../../src/gguf/file';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { nodeByteSource } from '../../src/gguf/node-byte-source';
import { LoraWeights } from '../../src/lora/adapter';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { TextTokenizer } from '../../src/model/tokenizer';
import { type OpenedModel, openModel } from '../../src/model/weights';
import { collectParts } from '../gguf/helpers';
import { llamaCppDistributions, llamaCppGreedy, maxAbsDiff, webtuneDistributions } from '../gguf/llama-cpp';
import { testGpu } from '../helpers/gpu';
import { STORIES_260K } from '../helpers/paths';
import { goldenAdapter, removeTempDirs, tempDir } from './helpers';

const PROMPT = 'Once upon a time';
const STEPS = 20;

let stories: OpenedModel;
let base: ExportBase;
let tokenizer: TextTokenizer;
let golden: AdapterTensors;
let zero: AdapterTensors;
let dir: string;
beforeAll(async () => {
  stories = await openModel(nodeFileSource(STORIES_260K));
  base = { ...stories, source: nodeFileSource(STORIES_260K) };
  tokenizer = TextTokenizer.fromJson(stories.tokenizerJson, stories.tokenizerConfig);
  golden = await goldenAdapter();
  zero = { config: golden.config, tensors: new Map(golden.tensors) };
  for (const [name, t] of golden.tensors)
    if (name.includes('lora_B')) zero.tensors.set(name, { shape: t.shape, data: new Float32Array(t.data.length) });
  dir = await tempDir('merged-gguf');
});
afterAll(removeTempDirs);

/** The export service's merged GGUF written as the CLI writes it (folder target, streamed), and its path. */
async function mergedFile(adapter: AdapterTensors, from: ExportBase, type: 'F32' | 'Q8_0' | 'F16', name: string): Promise<string> {
  const out = await exportAdapter(adapter, from, {
    format: 'merged-gguf',
    ggufType: type,
    name,
    peftBaseModel: 'x',
    ollamaBase: 'x',
    target: 'folder',
  });
  expect(out.ollama.modelfile).toBe(`FROM ./${name}.gguf\n`);
  expect(out.ollama.commands).toEqual([`ollama create ${name} -f Modelfile`, `ollama run ${name}`]);
  const written = await writeFolder(path.join(dir, name), out.files);
  expect(written.map((p) => path.basename(p))).toEqual([`${name}.gguf`, 'Modelfile']);
  return written[0];
}

async function webtuneGreedy(model: LlamaModel, adapter: LoraWeights | null): Promise<Generation> {
  return generate(model, tokenizer, adapter, PROMPT, { maxNewTokens: STEPS, temperature: 0 });
}

describe('merged GGUF of stories260K in llama.cpp', () => {
  let gpuBase: LlamaModel;
  beforeAll(async () => {
    gpuBase = await LlamaModel.load(await testGpu(), stories.weights);
  });

  for (const type of ['F32', 'Q8_0'] as const) {
    it(`${type}: loads, and its greedy continuation of "${PROMPT}" equals webtune's own`, async () => {
      const file = await mergedFile(zero, base, type, `stories-merged-${type.toLowerCase()}`);
      const parsed = await openGguf(await nodeByteSource(file));
      expect(parsed.tensors.get('blk.0.attn_q.weight')!.type.name).toBe(type);
      // ffn_down rows of 172 values are no whole number of Q8_0 blocks.
      expect(parsed.tensors.get('blk.0.ffn_down.weight')!.type.name).toBe(type === 'F32' ? 'F32' : 'F16');
      const onFile = await LlamaModel.load(await testGpu(), (await openGgufBase(await nodeByteSource(file))).weights);
      const ours = await webtuneGreedy(onFile, null);
      const theirs = await llamaCppGreedy(file, ours.promptIds, STEPS);
      expect(theirs.ids).toEqual(ours.ids);
      expect(theirs.text).toBe(ours.text);
      if (type === 'F32') {
        expect(ours.text.startsWith(', there was a little girl named Lily')).toBe(true);
        expect(ours.ids).toEqual((await webtuneGreedy(gpuBase, null)).ids);
      }
      onFile.destroy();
    });
  }

  it("F32 with a non-zero adapter: llama.cpp's next-token probabilities are webtune's base + adapter, unmerged", async () => {
    const file = await mergedFile(golden, base, 'F32', 'stories-golden');
    const adapter = LoraWeights.fromTensors(await testGpu(), stories.config, golden.config, golden.tensors, 'golden');
    const adapted = await webtuneGreedy(gpuBase, adapter);
    const theirs = await llamaCppGreedy(file, adapted.promptIds, STEPS);
    expect(theirs.ids).toEqual(adapted.ids);
    const ids = [...adapted.promptIds, ...adapted.ids];
    const dp = maxAbsDiff(
      await llamaCppDistributions(file, ids, stories.config.vocabSize),
      await webtuneDistributions(gpuBase, ids, adapter),
    );
    const moved = maxAbsDiff(await webtuneDistributions(gpuBase, ids, null), await webtuneDistributions(gpuBase, ids, adapter));
    console.info(
      `merged F32 (golden adapter): max |Δp| llama.cpp vs webtune base + adapter = ${dp.toExponential(2)}; ` +
        `the adapter moves p by ${moved.toExponential(2)}`,
    );
    expect(moved).toBeGreaterThan(1e-2);
    expect(dp).toBeLessThan(1e-4);
    adapter.destroy();
  });
});

describe('merged GGUF from a GGUF base', () => {
  let q8: OpenedGgufBase;
  beforeAll(async () => {
    const bytes = await collectParts(
      ggufModelParts({ config: stories.config, weights: stories.weights, tokenizer: stories, type: 'Q8_0' }),
    );
    q8 = await openGgufBase(memoryByteSource(bytes, 'stories-Q8_0.gguf'));
  });

  it("keeps the base's tokenizer metadata as it is, and llama.cpp runs it as webtune does", async () => {
    const file = await mergedFile(golden, { ...q8, source: null, ggufFile: q8.gguf.file }, 'F16', 'from-gguf');
    const merged = await openGguf(await nodeByteSource(file));
    const tokenizerKeys = [...q8.gguf.file.metadata.keys()].filter((k) => k.startsWith('tokenizer.'));
    expect(tokenizerKeys.length).toBeGreaterThan(5);
    for (const key of tokenizerKeys) expect(merged.metadata.get(key), key).toEqual(q8.gguf.file.metadata.get(key));
    const onFile = await LlamaModel.load(await testGpu(), (await openGgufBase(await nodeByteSource(file))).weights);
    const ours = await webtuneGreedy(onFile, null);
    expect((await llamaCppGreedy(file, ours.promptIds, STEPS)).ids).toEqual(ours.ids);
    onFile.destroy();
  });

  it('as a download: one Blob of the streamed parts, with FROM ./<name>-merged.gguf; a folder merge is refused', async () => {
    const from = { ...q8, source: null, ggufFile: q8.gguf.file };
    const opts = { name: 'Zog', peftBaseModel: 'x', ollamaBase: 'stories:260k', target: 'download' } as const;
    const out = await exportAdapter(golden, from, { ...opts, format: 'merged-gguf', ggufType: 'Q8_0' });
    expect(out.fileName).toBe('zog-merged.gguf');
    expect(out.bytes).toBeInstanceOf(Blob);
    const bytes = new Uint8Array(await (out.bytes as Blob).arrayBuffer());
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('GGUF');
    expect((await openGguf(memoryByteSource(bytes, 'zog-merged.gguf'))).tensors.get('blk.1.attn_v.weight')!.type.name).toBe('Q8_0');
    expect(out.ollama.modelfile).toBe('FROM ./zog-merged.gguf\n');
    await expect(exportAdapter(golden, from, { ...opts, format: 'merged' })).rejects.toThrow(
      /GGUF file, not a Hugging Face folder.*export the merged model as GGUF/,
    );
  });
});

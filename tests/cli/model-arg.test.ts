/**
 * `--model` of the CLI on every form of a GGUF base: a .gguf file, an Ollama blob (no extension),
 * an Ollama store with --ollama-model, the shards of a split file; each generates what the
 * Hugging Face folder generates. Store and folder mistakes are refused with the choices named.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGguf, joinParts } from '../../src/gguf/encode';
import { ggufShardName, openGguf } from '../../src/gguf/file';
import { memoryByteSource } from '../../src/gguf/byte-source';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { gguf, type GgufValue } from '../../src/gguf/values';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { collectParts } from '../gguf/helpers';
import { writeOllamaStore } from '../gguf/ollama-store';
import { webtune } from '../helpers/cli';
import { STORIES_260K } from '../helpers/paths';

const LILY = ', there was a little girl named Lily. She loved to play outside in the park.';
const generateArgs = ['--prompt', 'Once upon a time', '--max-new-tokens', '27', '--temperature', '0'];

let dir: string;
let bytes: Uint8Array<ArrayBuffer>;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-cli-gguf-'));
  const stories = await openModel(nodeFileSource(STORIES_260K));
  bytes = await collectParts(ggufModelParts({ config: stories.config, weights: stories.weights, tokenizer: stories, type: 'F32' }));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** `bytes` as gguf-split writes it: the metadata in the first shard, the tensors spread over `count` files. */
async function writeShards(count: number): Promise<string[]> {
  const file = await openGguf(memoryByteSource(bytes, 'stories.gguf'));
  const tensors = [];
  for (const t of file.tensors.values()) tensors.push({ name: t.name, dims: t.dims, type: t.type, data: await file.readTensorBytes(t) });
  const per = Math.ceil(tensors.length / count);
  const paths: string[] = [];
  for (let no = 0; no < count; no++) {
    const split: [string, GgufValue][] = [
      ['split.no', gguf.u16(no)],
      ['split.count', gguf.u16(count)],
      ['split.tensors.count', gguf.i32(tensors.length)],
    ];
    const meta = no === 0 ? [...file.metadata, ...split] : split;
    const p = path.join(dir, 'split', ggufShardName('stories', no, count));
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, joinParts(encodeGguf(meta, tensors.slice(no * per, (no + 1) * per))));
    paths.push(p);
  }
  return paths;
}

describe('webtune --model with GGUF bases', () => {
  it('a .gguf file, an Ollama blob, an Ollama store with --ollama-model, and a split file all generate as the folder does', async () => {
    const file = path.join(dir, 'stories260K.gguf');
    await writeFile(file, bytes);
    const store = path.join(dir, 'store');
    const [blob] = await writeOllamaStore(store, [{ name: 'stories:260k', gguf: bytes }]);
    const shards = await writeShards(3);
    for (const model of [
      ['--model', file],
      ['--model', blob],
      ['--model', store, '--ollama-model', 'stories:260k'],
      ['--model', shards[0]],
    ]) {
      const run = webtune(['generate', ...model, ...generateArgs]);
      expect(run.status, `${model.join(' ')}: ${run.stderr}`).toBe(0);
      expect(run.last, model.join(' ')).toBe(LILY);
    }
    // With one model in the store, --ollama-model may be left out.
    expect(webtune(['generate', '--model', store, ...generateArgs]).last).toBe(LILY);
  });

  it("says when a GGUF's tokenizer may differ from llama.cpp's, and --tokenizer takes the model's own tokenizer.json", async () => {
    const file = await openGguf(memoryByteSource(bytes, 'stories.gguf'));
    const tensors = [];
    for (const t of file.tensors.values()) tensors.push({ name: t.name, dims: t.dims, type: t.type, data: await file.readTensorBytes(t) });
    const noScores = [...file.metadata].filter(([key]) => key !== 'tokenizer.ggml.scores');
    const scoreless = path.join(dir, 'scoreless.gguf');
    await writeFile(scoreless, joinParts(encodeGguf(noScores, tensors)));
    const built = webtune(['generate', '--model', scoreless, ...generateArgs]);
    expect(built.status, built.stderr).toBe(0);
    expect(built.stderr).toMatch(/tokenizer: the file has no score for each token .*pass the model's tokenizer\.json with --tokenizer/);
    const own = webtune(['generate', '--model', scoreless, '--tokenizer', STORIES_260K, ...generateArgs]);
    expect(own.stderr).not.toMatch(/tokenizer:/);
    expect(own.last).toBe(LILY);
  });

  it('names the choices when the model is ambiguous or missing', async () => {
    const store = path.join(dir, 'two');
    await writeOllamaStore(store, [
      { name: 'stories:260k', gguf: bytes },
      { name: 'me/zog:v1', gguf: bytes },
    ]);
    const ambiguous = webtune(['generate', '--model', store, ...generateArgs]);
    expect(ambiguous.status).not.toBe(0);
    expect(ambiguous.stderr).toMatch(/is an Ollama store; choose its model with --ollama-model <name> \(it has me\/zog:v1, stories:260k\)/);
    const missing = webtune(['generate', '--model', store, '--ollama-model', 'llama3', ...generateArgs]);
    expect(missing.stderr).toMatch(/OllamaStoreError: .*has no Ollama model llama3 .*It has: me\/zog:v1, stories:260k/);
    const notGguf = path.join(dir, 'notes.txt');
    await writeFile(notGguf, 'hello, world');
    expect(webtune(['generate', '--model', notGguf, ...generateArgs]).stderr).toMatch(
      /is not a GGUF file \(it does not start with "GGUF"\)/,
    );
  });
});

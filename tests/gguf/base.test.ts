/**
 * GGUF files as base models, the way the page and the CLI open them (model/open-files.ts,
 * gguf/base.ts): told apart by content (an Ollama blob has no extension), the same OpenedModel as
 * the Hugging Face folder, the quantization mix, a tokenizer.json beside the file replacing the
 * built one, shards, and each kind of bad file refused with a typed error that names the problem.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openGgufBase } from '../../src/gguf/base';
import { memoryByteSource } from '../../src/gguf/byte-source';
import { GgufFormatError } from '../../src/gguf/errors';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { readGgufHeader } from '../../src/gguf/reader';
import { ModelLoadError, UnsupportedModelError } from '../../src/model/errors';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModelFiles } from '../../src/model/open-files';
import { type OpenedModel, expectedTensorShapes, openModel } from '../../src/model/weights';
import { STORIES_260K } from '../helpers/paths';
import { collectParts, setU32, setU64, tensorInfoFields } from './helpers';
import { llamaCppMix } from '../../src/gguf/quant-mix';

let stories: OpenedModel;
let f32: Uint8Array<ArrayBuffer>;
let q4km: Uint8Array<ArrayBuffer>;
beforeAll(async () => {
  stories = await openModel(nodeFileSource(STORIES_260K));
  const spec = { config: stories.config, weights: stories.weights, tokenizer: stories };
  f32 = await collectParts(ggufModelParts({ ...spec, type: 'F32' }));
  q4km = await collectParts(ggufModelParts({ ...spec, type: 'Q4_K', typeFor: llamaCppMix('Q4_K_M', stories.config) }));
});

const blob = (bytes: Uint8Array<ArrayBuffer>) => new Blob([bytes]);
const BLOB_NAME = `sha256-${'ab'.repeat(32)}`;

describe('a GGUF file as a base model', () => {
  it('an Ollama blob (no extension) is recognised by its magic and opens like the Hugging Face folder', async () => {
    const { opened, source } = await openModelFiles(new Map([[`models/blobs/${BLOB_NAME}`, blob(f32)]]), BLOB_NAME);
    expect(source).toBeNull();
    expect(opened.config).toEqual({ ...stories.config, rmsNormEps: Math.fround(stories.config.rmsNormEps) });
    for (const [name, shape] of expectedTensorShapes(stories.config)) {
      expect(Array.from(await opened.weights.tensor(name, shape)), name).toEqual(Array.from(await stories.weights.tensor(name, shape)));
    }
    expect(opened.gguf!.tokenizer).toEqual({ source: 'gguf', kind: 'llama', problems: [] });
    expect(opened.gguf!.fileBytes).toBe(f32.length);
    expect(opened.tokenizerConfig).toMatchObject({ bos_token: '<s>', eos_token: '</s>' });
  });

  it("reports the quantization mix: tensors and bytes per type, as llama-quantize's Q4_K_M leaves stories260K", async () => {
    const opened = await openGgufBase(memoryByteSource(q4km, 'stories260K-Q4_K_M.gguf'));
    const mix = Object.fromEntries(opened.gguf.quantization.map((q) => [q.type, q.tensors]));
    expect(mix).toEqual({ Q5_0: 28, Q8_0: 3, F16: 5, F32: 11 });
    const bytes = Object.fromEntries(opened.gguf.quantization.map((q) => [q.type, q.bytes]));
    const c = stories.config;
    // token_embd [512, 64] and two attn_v [32, 64] at 34 bytes per 32 values; ffn_down [64, 172] at 2 bytes a value.
    expect(bytes.Q8_0).toBe(((c.vocabSize * 64 + 2 * 32 * 64) / 32) * 34);
    expect(bytes.F16).toBe(5 * 64 * 172 * 2);
    expect(opened.gguf.quantization[0].type).toBe('Q5_0');
    expect(opened.gguf.quantization.reduce((n, q) => n + q.bytes, 0)).toBeLessThan(q4km.length);
  });

  it("uses the model's own tokenizer.json and tokenizer_config.json when they come with the GGUF", async () => {
    const tokenizerJson = await readFile(path.join(STORIES_260K, 'tokenizer.json'));
    const config = JSON.stringify({ ...stories.tokenizerConfig, chat_template: '{{ messages[0].content }}' });
    const files = new Map<string, Blob>([
      ['stories.gguf', blob(f32)],
      ['tokenizer.json', new Blob([tokenizerJson])],
      ['tokenizer_config.json', new Blob([config])],
    ]);
    const { opened } = await openModelFiles(files, 'stories.gguf');
    expect(opened.gguf!.tokenizer.source).toBe('tokenizer.json');
    expect(opened.tokenizerJson).toEqual(stories.tokenizerJson);
    expect(opened.tokenizerConfig.chat_template).toBe('{{ messages[0].content }}');
  });

  it('a folder with config.json is still the Hugging Face path; other files are refused with what to pick', async () => {
    const files = new Map<string, Blob>();
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
      files.set(`stories260K/${f}`, new Blob([await readFile(path.join(STORIES_260K, f))]));
    }
    const hf = await openModelFiles(files, 'stories260K');
    expect(hf.source).not.toBeNull();
    expect(hf.opened.gguf).toBeUndefined();
    const other = openModelFiles(new Map([['notes.txt', new Blob(['hello'])]]), 'notes');
    await expect(other).rejects.toThrow(ModelLoadError);
    await expect(openModelFiles(new Map([['notes.txt', new Blob(['hello'])]]), 'notes')).rejects.toThrow(
      /neither a Hugging Face model folder \(no config\.json\) nor a GGUF file.*Ollama/,
    );
  });
});

describe('bad GGUF files are refused with a typed error naming the problem', () => {
  const open = (bytes: Uint8Array<ArrayBuffer>) => openModelFiles(new Map([[BLOB_NAME, blob(bytes)]]), BLOB_NAME);
  const refusal = (bytes: Uint8Array<ArrayBuffer>) =>
    open(bytes).then(
      () => null,
      (e: unknown) => e as Error,
    );

  it('truncated, data past the end, huge counts, an unknown tensor type', async () => {
    const cut = (await readGgufHeader(memoryByteSource(f32, 'x'))).dataOffset - 7;
    const cases: [string, Uint8Array<ArrayBuffer>, string, RegExp][] = [
      ['truncated', f32.slice(0, cut), 'truncated', new RegExp(`the file ends at byte ${cut}`)],
      ['data past the end', f32.slice(0, f32.length - 100), 'tensor-past-end', /ends past the end of the file/],
      ['a huge tensor count', setU64(f32, 8, 1n << 40n) as Uint8Array<ArrayBuffer>, 'too-many-entries', /claims 1099511627776 tensors/],
      [
        'an unknown tensor type',
        setU32(f32, tensorInfoFields(f32, 'output_norm.weight').type, 99) as Uint8Array<ArrayBuffer>,
        'unknown-type',
        /tensor "output_norm\.weight" has ggml type id 99, which is unknown/,
      ],
    ];
    for (const [label, bytes, problem, text] of cases) {
      const err = await refusal(bytes);
      expect(err, label).toBeInstanceOf(GgufFormatError);
      expect((err as GgufFormatError).problem, label).toBe(problem);
      expect(err!.message, label).toMatch(text);
      expect(err!.message, label).toContain(`${BLOB_NAME} is not a valid GGUF file`);
    }
  });

  it('an architecture webtune does not train', async () => {
    const bytes = f32.slice();
    const at = Buffer.from(bytes).indexOf(Buffer.from('llama', 'utf8'), Buffer.from(bytes).indexOf('general.architecture') + 20);
    bytes.set(new TextEncoder().encode('gemma'), at);
    const err = await refusal(bytes);
    expect(err).toBeInstanceOf(UnsupportedModelError);
    expect(err!.message).toMatch(/general\.architecture "gemma" is not supported.*webtune supports Llama-architecture/);
  });
});

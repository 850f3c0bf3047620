import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterTensors } from '../../src/export/adapter';
import { AdapterExportError, AdapterImportError } from '../../src/export/errors';
import { writeFolder } from '../../src/export/node-folder';
import { peftAdapterFiles, readPeftAdapter } from '../../src/export/peft';
import { unzipToFileSource, zipFiles } from '../../src/export/zip';
import type { ModelConfig } from '../../src/model/config';
import { filesFromList, type FileSource } from '../../src/model/file-source';
import { nodeFileSource } from '../../src/model/node-file-source';
import { parseSafetensorsHeader, readSafetensors, writeSafetensors } from '../../src/model/safetensors';
import {
  expectBitIdentical,
  expectRefusal,
  goldenAdapter,
  GOLDEN_CASE_DIR,
  qwen2Config,
  randomAdapter,
  rawTensors,
  halfBits,
  removeTempDirs,
  storiesConfig,
  STORIES_DIR,
  tempDir,
} from './helpers';

let stories: ModelConfig;
beforeAll(async () => {
  stories = await storiesConfig();
});
afterAll(removeTempDirs);

const memorySource = (files: Record<string, Uint8Array | string>, description = 'test-adapter'): FileSource =>
  filesFromList(new Map(Object.entries(files).map(([p, v]) => [p, new Blob([v as Uint8Array<ArrayBuffer> | string])])), description);

const decodeJson = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));

function expectSameAdapter(actual: AdapterTensors, expected: AdapterTensors): void {
  expect(actual.config).toEqual(expected.config);
  expect([...actual.tensors.keys()].sort()).toEqual([...expected.tensors.keys()].sort());
  for (const [name, t] of expected.tensors) {
    const got = actual.tensors.get(name)!;
    expect(got.shape).toEqual(t.shape);
    expectBitIdentical(got.data, t.data);
  }
}

/** A valid exported adapter as an editable file map, for building broken variants. */
function exportedFiles(adapter: AdapterTensors): { config: Record<string, unknown>; weights: Uint8Array } {
  const files = peftAdapterFiles(adapter, { baseModel: 'stories260K' });
  return { config: decodeJson(files['adapter_config.json']), weights: files['adapter_model.safetensors'] };
}

const sourceWith = (config: Record<string, unknown>, weights: Uint8Array) =>
  memorySource({ 'adapter_config.json': JSON.stringify(config), 'adapter_model.safetensors': weights });

describe('peftAdapterFiles', () => {
  it('writes the adapter_config.json keys PEFT, transformers, vLLM and Ollama read', async () => {
    const adapter = randomAdapter(stories, { r: 8, alpha: 16, dropout: 0.05, targets: ['v_proj', 'q_proj', 'down_proj'], useRslora: true });
    const files = peftAdapterFiles(adapter, { baseModel: 'HuggingFaceTB/SmolLM2-135M' });
    expect(Object.keys(files).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(decodeJson(files['adapter_config.json'])).toEqual({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
      r: 8,
      lora_alpha: 16,
      lora_dropout: 0.05,
      target_modules: ['q_proj', 'v_proj', 'down_proj'],
      bias: 'none',
      fan_in_fan_out: false,
      use_rslora: true,
      use_dora: false,
      init_lora_weights: true,
      modules_to_save: null,
      inference_mode: true,
    });
    expect(decodeJson(peftAdapterFiles(adapter, { baseModel: null })['adapter_config.json']).base_model_name_or_path).toBeNull();

    const bytes = files['adapter_model.safetensors'];
    const header = parseSafetensorsHeader(bytes, bytes.length, 'adapter_model.safetensors');
    expect(header.metadata).toEqual({ format: 'pt' });
    expect(header.tensors.size).toBe(adapter.tensors.size);
    for (const [name, t] of adapter.tensors) {
      const info = header.tensors.get(name)!;
      expect(info.dtype).toBe('F32');
      expect(info.shape).toEqual(t.shape);
    }
    expect(header.tensors.get('base_model.model.model.layers.4.mlp.down_proj.lora_A.weight')!.shape).toEqual([8, 172]);
    expect(header.tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!.shape).toEqual([64, 8]);
  });

  it('refuses tensors that do not match the adapter settings', async () => {
    const adapter = randomAdapter(stories, { r: 4 });
    const [name, tensor] = [...adapter.tensors].find(([n]) => n.endsWith('lora_A.weight'))!;
    adapter.tensors.set(name, { shape: [2, tensor.shape[1]], data: tensor.data.subarray(0, 2 * tensor.shape[1]) });
    await expectRefusal(() => peftAdapterFiles(adapter, { baseModel: null }), AdapterExportError, name, 'rank 4');
  });
});

describe('PEFT export -> import', () => {
  it('round-trips A and B bit-identically through a folder on disk', async () => {
    const adapter = randomAdapter(stories, {
      r: 3,
      alpha: 7,
      targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    });
    const dir = await tempDir('peft');
    await writeFolder(dir, peftAdapterFiles(adapter, { baseModel: 'stories260K' }));
    expectSameAdapter(await readPeftAdapter(nodeFileSource(dir), stories), adapter);
  });

  it('round-trips through a zip, also with the files inside a folder of the zip', async () => {
    const adapter = randomAdapter(stories, { r: 2, alpha: 4, useRslora: true, dropout: 0.1 });
    const files = peftAdapterFiles(adapter, { baseModel: null });
    expectSameAdapter(await readPeftAdapter(unzipToFileSource(zipFiles(files), 'adapter.zip'), stories), adapter);
    const nested = zipFiles({
      'my-adapter/adapter_config.json': files['adapter_config.json'],
      'my-adapter/adapter_model.safetensors': files['adapter_model.safetensors'],
    });
    expectSameAdapter(await readPeftAdapter(unzipToFileSource(nested, 'my-adapter.zip'), stories), adapter);
  });

  it('imports the golden PEFT adapter with the config of its case', async () => {
    const golden = await goldenAdapter();
    const config = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['k_proj', 'q_proj', 'v_proj'], lora_dropout: 0.0 };
    const weights = new Uint8Array(await readFile(path.join(GOLDEN_CASE_DIR, 'adapter_init.safetensors')));
    const imported = await readPeftAdapter(sourceWith(config, weights), stories);
    expect(imported.config).toEqual({ r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj'], useRslora: false });
    expectSameAdapter(imported, golden);
  });

  it('accepts F16 and BF16 tensors as Python PEFT may save them', async () => {
    const adapter = randomAdapter(stories, { r: 2 });
    const { config } = exportedFiles(adapter);
    const halfTensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[] = [];
    const expected = new Map<string, Float32Array>();
    for (const [i, [name, t]] of [...adapter.tensors].entries()) {
      const bits = new Uint16Array(t.data.length);
      const values = new Float32Array(t.data.length);
      const dtype = i % 2 ? 'BF16' : 'F16';
      for (let k = 0; k < bits.length; k++) {
        // Exactly representable in both formats: multiples of 1/64 in [-1, 1).
        const v = Math.round(t.data[k] * 64) / 64;
        values[k] = v;
        bits[k] = dtype === 'BF16' ? new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16 : halfBits(v);
      }
      expected.set(name, values);
      halfTensors.push({ name, dtype, shape: t.shape, bytes: new Uint8Array(bits.buffer) });
    }
    const imported = await readPeftAdapter(sourceWith(config, rawTensors(halfTensors)), stories);
    for (const [name, values] of expected) expectBitIdentical(imported.tensors.get(name)!.data, values);
  });
});

describe('readPeftAdapter refuses what it cannot apply', () => {
  it('an adapter trained for another base model, naming the tensor and both shapes', async () => {
    const other = qwen2Config({ hidden_size: 48, num_hidden_layers: 5 });
    const { config, weights } = exportedFiles(randomAdapter(other, { r: 4 }));
    await expectRefusal(
      () => readPeftAdapter(sourceWith(config, weights), stories),
      AdapterImportError,
      'adapter_model.safetensors in test-adapter',
      'tensor "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"',
      'has shape [4, 48]',
      'needs [4, 64]',
      'different base model',
    );
  });

  it('an adapter with more layers than the model', async () => {
    const deeper = { ...stories, numLayers: 6 };
    const { config, weights } = exportedFiles(randomAdapter(deeper));
    await expectRefusal(
      () => readPeftAdapter(sourceWith(config, weights), stories),
      AdapterImportError,
      'layers.5.',
      'for layer 5',
      'has 5 layers',
    );
  });

  it('tensors whose rank differs from r in adapter_config.json', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories, { r: 4 }));
    await expectRefusal(
      () => readPeftAdapter(sourceWith({ ...config, r: 8 }, weights), stories),
      AdapterImportError,
      'has shape [4, 64], expected [8, 64]',
      "its rank is 4 but the adapter's r is 8",
    );
  });

  it('an unknown peft_type, naming it', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories));
    await expectRefusal(
      () => readPeftAdapter(sourceWith({ ...config, peft_type: 'IA3' }, weights), stories),
      AdapterImportError,
      'peft_type "IA3"',
      'LoRA adapters only',
    );
    const { peft_type: _, ...withoutType } = config;
    await expectRefusal(() => readPeftAdapter(sourceWith(withoutType, weights), stories), AdapterImportError, 'has no "peft_type"');
  });

  it('DoRA, by its magnitude tensors or by use_dora', async () => {
    const adapter = randomAdapter(stories);
    const { config } = exportedFiles(adapter);
    const magnitude = 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector';
    const withMagnitude = writeSafetensors([
      ...[...adapter.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
      { name: magnitude, shape: [64], data: new Float32Array(64).fill(1) },
    ]);
    await expectRefusal(
      () => readPeftAdapter(sourceWith(config, withMagnitude), stories),
      AdapterImportError,
      magnitude,
      'DoRA adapters are not supported',
    );
    await expectRefusal(
      () => readPeftAdapter(sourceWith({ ...config, use_dora: true }, exportedFiles(adapter).weights), stories),
      AdapterImportError,
      'use_dora is true',
      'DoRA',
    );
  });

  it('a weights file that is not safetensors, and a folder with only adapter_model.bin', async () => {
    const { config } = exportedFiles(randomAdapter(stories));
    const pickleZip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    await expectRefusal(
      () => readPeftAdapter(sourceWith(config, pickleZip), stories),
      AdapterImportError,
      'adapter_model.safetensors in test-adapter is not a valid safetensors file',
    );
    const binOnly = memorySource({ 'adapter_config.json': JSON.stringify(config), 'adapter_model.bin': pickleZip });
    await expectRefusal(
      () => readPeftAdapter(binOnly, stories),
      AdapterImportError,
      'only adapter_model.bin',
      'PyTorch pickle',
      'safe_serialization=True',
    );
    const noWeights = memorySource({ 'adapter_config.json': JSON.stringify(config) });
    await expectRefusal(() => readPeftAdapter(noWeights, stories), AdapterImportError, 'has no adapter_model.safetensors');
  });

  it('a model folder or a folder without adapter_config.json', async () => {
    await expectRefusal(
      () => readPeftAdapter(nodeFileSource(STORIES_DIR), stories),
      AdapterImportError,
      'holds a model (config.json), not a LoRA adapter',
    );
    await expectRefusal(
      () => readPeftAdapter(memorySource({ 'notes.txt': 'hi' }), stories),
      AdapterImportError,
      'has no adapter_config.json',
    );
    await expectRefusal(
      () => readPeftAdapter(memorySource({ 'adapter_config.json': '{"peft_type": "LORA",', 'adapter_model.safetensors': '' }), stories),
      AdapterImportError,
      'adapter_config.json in test-adapter is not valid JSON',
    );
  });

  it('config options whose effect webtune does not implement', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories));
    const cases: [Record<string, unknown>, string[]][] = [
      [{ target_modules: '.*\\.(q_proj|v_proj)' }, ['target_modules is the pattern', 'list of module names']],
      [{ target_modules: 'all-linear' }, ['"all-linear"', 'list of module names']],
      [{ target_modules: ['q_proj', 'lm_head'] }, ['target_modules lists ["lm_head"]']],
      [{ fan_in_fan_out: true }, ['fan_in_fan_out is true']],
      [{ modules_to_save: ['lm_head'] }, ['modules_to_save ["lm_head"]']],
      [{ rank_pattern: { q_proj: 16 } }, ['rank_pattern {"q_proj":16}']],
      [{ alpha_pattern: { v_proj: 32 } }, ['alpha_pattern']],
      [{ bias: 'lora_only' }, ['bias "lora_only"']],
      [{ layers_to_transform: [0, 1] }, ['layers_to_transform [0,1]']],
      [{ lora_alpha: 0 }, ['LoRA setting "alpha"']],
    ];
    for (const [change, fragments] of cases) {
      await expectRefusal(
        () => readPeftAdapter(sourceWith({ ...config, ...change }, weights), stories),
        AdapterImportError,
        'adapter_config.json in test-adapter',
        ...fragments,
      );
    }
    // What PEFT writes for the defaults is accepted.
    const defaults = {
      ...config,
      modules_to_save: null,
      rank_pattern: {},
      alpha_pattern: {},
      layers_to_transform: null,
      bias: 'none',
      use_dora: false,
    };
    await expect(readPeftAdapter(sourceWith(defaults, weights), stories)).resolves.toBeDefined();
  });

  it('tensors that are unknown, for unlisted modules, or missing', async () => {
    const adapter = randomAdapter(stories, { targets: ['q_proj', 'v_proj'] });
    const { config } = exportedFiles(adapter);
    const list = [...adapter.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
    const extra = (name: string, shape: number[]) =>
      writeSafetensors([...list, { name, shape, data: new Float32Array(shape[0] * shape[1]) }]);

    await expectRefusal(
      () => readPeftAdapter(sourceWith(config, extra('base_model.model.lm_head.lora_A.weight', [4, 64])), stories),
      AdapterImportError,
      '"base_model.model.lm_head.lora_A.weight" is not a LoRA tensor webtune knows',
    );
    await expectRefusal(
      () => readPeftAdapter(sourceWith(config, extra('base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight', [4, 64])), stories),
      AdapterImportError,
      'adapts k_proj, which is not among the target modules (q_proj, v_proj)',
    );
    const missing = 'base_model.model.model.layers.3.self_attn.v_proj.lora_B.weight';
    await expectRefusal(
      () => readPeftAdapter(sourceWith(config, writeSafetensors(list.filter((t) => t.name !== missing))), stories),
      AdapterImportError,
      `"${missing}" is missing`,
    );
  });
});

/** A FileSource that records which files were read (whole or in part), to show a refusal came before reading them. */
function recordingSource(inner: FileSource, overrides: { size?: Record<string, number> } = {}): { source: FileSource; reads: string[] } {
  const reads: string[] = [];
  const source: FileSource = {
    description: inner.description,
    has: (p) => inner.has(p),
    size: async (p) => overrides.size?.[p] ?? inner.size(p),
    read: (p, begin, end) => {
      reads.push(p);
      return inner.read(p, begin, end);
    },
  };
  return { source, reads };
}

describe('readPeftAdapter refuses absurd adapter_config.json values before allocating', () => {
  it('an r that is not a positive integer or is larger than the model, naming "r", without reading the weights', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories, { r: 4 }));
    const cases: [unknown, string][] = [
      [0, 'must be a positive integer, got 0'],
      [-4, 'must be a positive integer, got -4'],
      [4.5, 'must be a positive integer, got 4.5'],
      [1e9, "r is 1000000000, larger than the model's hidden size 64"],
      [65, "r is 65, larger than the model's hidden size 64"],
      ['8', 'r is "8", not a number'],
      [null, 'has no "r"'],
    ];
    for (const [r, problem] of cases) {
      const { source, reads } = recordingSource(sourceWith({ ...config, r }, weights));
      const where = 'adapter_config.json in test-adapter';
      const error = await expectRefusal(() => readPeftAdapter(source, stories), AdapterImportError, where, problem);
      expect(error.message, String(r)).toMatch(/\br\b/);
      expect(reads).not.toContain('adapter_model.safetensors');
    }
  });

  it('target lists that are huge, not strings or unknown, naming target_modules, with short messages', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories));
    const longName = 'x'.repeat(100_000);
    const cases: [unknown, string][] = [
      [Array.from({ length: 100_000 }, () => 'q_proj'), 'target_modules lists 100000 names, more than the 64'],
      [[1, 2], 'target_modules [1,2] is not a non-empty list of module names'],
      [['q_proj', null], 'target_modules ["q_proj",null] is not a non-empty list'],
      [['q_proj', { name: 'v_proj' }], 'is not a non-empty list'],
      [[], 'target_modules [] is not a non-empty list'],
      [{ q_proj: true }, 'target_modules {"q_proj":true} is not a non-empty list'],
      [['q_proj', 'constructor', '__proto__'], 'target_modules lists ["constructor","__proto__"], which webtune cannot adapt'],
      [[longName], 'target_modules lists ["xxxx'],
    ];
    for (const [targets, problem] of cases) {
      const { source, reads } = recordingSource(sourceWith({ ...config, target_modules: targets }, weights));
      const error = await expectRefusal(() => readPeftAdapter(source, stories), AdapterImportError, problem);
      expect(error.message.length).toBeLessThan(400);
      expect(reads).not.toContain('adapter_model.safetensors');
    }
  });

  it('other absurd values, naming their field', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories));
    const cases: [Record<string, unknown>, string][] = [
      [{ lora_alpha: -1 }, 'lora_alpha is refused (LoRA setting "alpha": must be a positive number, got -1)'],
      [{ lora_alpha: 'big' }, 'lora_alpha is "big", not a number'],
      [{ lora_dropout: 1.5 }, 'lora_dropout is refused (LoRA setting "dropout": must be in [0, 1), got 1.5)'],
      [{ use_rslora: 'yes' }, 'use_rslora is "yes", not true or false'],
      [{ peft_type: 'L'.repeat(50_000) }, 'peft_type "LLLL'],
    ];
    for (const [change, problem] of cases) {
      const source = sourceWith({ ...config, ...change }, weights);
      const error = await expectRefusal(() => readPeftAdapter(source, stories), AdapterImportError, problem);
      expect(error.message.length).toBeLessThan(400);
    }
    // Nested deeper than JSON.stringify can recurse: written as text, it still gets a short message.
    const nested = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const text = JSON.stringify(config).replace(/}$/, `,"modules_to_save":${nested}}`);
    const source = memorySource({ 'adapter_config.json': text, 'adapter_model.safetensors': weights });
    await expectRefusal(() => readPeftAdapter(source, stories), AdapterImportError, 'modules_to_save (a value too deeply nested to show)');
  });

  it('a "__proto__" key in the JSON text supplies no missing field', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories));
    const { r: _, ...withoutR } = config;
    const text = JSON.stringify(withoutR).replace(/}$/, ',"__proto__":{"r":4}}');
    const source = memorySource({ 'adapter_config.json': text, 'adapter_model.safetensors': weights });
    await expectRefusal(() => readPeftAdapter(source, stories), AdapterImportError, 'has no "r"');
  });

  it('an adapter_config.json too large to be one, without reading it', async () => {
    const { config, weights } = exportedFiles(randomAdapter(stories));
    const { source, reads } = recordingSource(sourceWith(config, weights), { size: { 'adapter_config.json': 2 ** 31 } });
    const problem = 'adapter_config.json in test-adapter is 2147483648 bytes';
    await expectRefusal(() => readPeftAdapter(source, stories), AdapterImportError, problem);
    expect(reads).toEqual([]);
  });

  it('reads the weights header before the tensor data, and no tensor data when the header does not fit', async () => {
    const adapter = randomAdapter(stories, { r: 4 });
    const { config, weights } = exportedFiles(adapter);
    const ranges: [number, number | undefined][] = [];
    const inner = sourceWith({ ...config, r: 8 }, weights);
    const source: FileSource = {
      ...inner,
      read: (p, b, e) => {
        ranges.push([b ?? 0, e]);
        return inner.read(p, b, e);
      },
    };
    await expectRefusal(() => readPeftAdapter(source, stories), AdapterImportError, "its rank is 4 but the adapter's r is 8");
    const headerEnd = 8 + Number(new DataView(weights.buffer, weights.byteOffset).getBigUint64(0, true));
    // adapter_config.json once, then the weights' first 8 bytes and header: never past the header.
    expect(Math.max(...ranges.slice(1).map(([, e]) => e ?? Infinity))).toBe(headerEnd);
  });
});

describe('writeFolder', () => {
  it('writes files and async iterables, creating subfolders, and refuses paths outside the folder', async () => {
    const dir = await tempDir('folder');
    await writeFolder(dir, { 'a.txt': new Uint8Array([1]), 'sub/b.bin': new Uint8Array([2, 3]) });
    async function* more() {
      yield { path: 'c/d.txt', bytes: new TextEncoder().encode('hi') };
    }
    await writeFolder(dir, more());
    expect([...(await readFile(path.join(dir, 'sub/b.bin')))]).toEqual([2, 3]);
    expect(await readFile(path.join(dir, 'c/d.txt'), 'utf8')).toBe('hi');
    await expectRefusal(() => writeFolder(dir, { '../escape.txt': new Uint8Array(1) }), Error, 'outside');
  });
});

describe('readSafetensors interop', () => {
  it('the exported weights read back with the project reader', () => {
    const adapter = randomAdapter(qwen2Config());
    const bytes = peftAdapterFiles(adapter, { baseModel: null })['adapter_model.safetensors'];
    const { tensors } = readSafetensors(bytes, 'adapter_model.safetensors');
    for (const [name, t] of adapter.tensors) expectBitIdentical(tensors.get(name)!.data, t.data);
  });
});

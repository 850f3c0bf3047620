import { copyFile, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MissingFileError, MissingTensorError, TensorShapeError, UnsupportedModelError } from '../../src/model/errors';
import type { FileSource } from '../../src/model/file-source';
import { nodeFileSource } from '../../src/model/node-file-source';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors';
import { expectedTensorShapes, openModel } from '../../src/model/weights';
import { rawSafetensors, STORIES_DIR, tempDir } from './helpers';

type Tensor = { name: string; shape: number[]; data: Float32Array };

const SIDE_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'];
let original: Map<string, { shape: number[]; data: Float32Array }>;
const dirs: string[] = [];

beforeAll(async () => {
  original = readSafetensors(new Uint8Array(await readFile(path.join(STORIES_DIR, 'model.safetensors'))), 'model.safetensors').tensors;
});
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function originalTensors(): Tensor[] {
  return [...original].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
}

/** A temp model folder with stories260K's config and tokenizer and the given weight files. */
async function modelFolder(weightFiles: Record<string, Uint8Array | string>, sideFiles = SIDE_FILES): Promise<string> {
  const dir = await tempDir('model');
  dirs.push(dir);
  for (const f of sideFiles) await copyFile(path.join(STORIES_DIR, f), path.join(dir, f));
  for (const [name, bytes] of Object.entries(weightFiles)) await writeFile(path.join(dir, name), bytes);
  return dir;
}

const scratch = new DataView(new ArrayBuffer(4));
function f32Bits(x: number): number {
  scratch.setFloat32(0, x, true);
  return scratch.getUint32(0, true);
}
/** f32 -> f16 bits with round-half-up, good enough to build a test file (the loader's decoding is tested exactly elsewhere). */
function halfBits(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = ((b >>> 23) & 0xff) - 112;
  const mant = b & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) return exp < -10 ? sign : sign | ((((mant | 0x800000) >> (1 - exp)) + 0x1000) >> 13);
  return sign | ((exp << 10) + ((mant + 0x1000) >> 13));
}

function halfSafetensors(tensors: Tensor[], dtype: 'F16' | 'BF16'): Uint8Array {
  const header: Record<string, unknown> = {};
  const values: number[] = [];
  for (const t of tensors) {
    header[t.name] = { dtype, shape: t.shape, data_offsets: [values.length * 2, (values.length + t.data.length) * 2] };
    for (const x of t.data) values.push(dtype === 'F16' ? halfBits(x) : f32Bits(x) >>> 16);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  return rawSafetensors(json, new Uint8Array(new Uint16Array(values).buffer));
}

function splitShards(tensors: Tensor[], write: (part: Tensor[]) => Uint8Array): Record<string, Uint8Array | string> {
  const half = Math.ceil(tensors.length / 2);
  const parts = [tensors.slice(0, half), tensors.slice(half)];
  const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    for (const t of part) weightMap[t.name] = names[i];
  }
  return {
    [names[0]]: write(parts[0]),
    [names[1]]: write(parts[1]),
    'model.safetensors.index.json': JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('openModel', () => {
  it('opens stories260K and reads tensors by name', async () => {
    const { config, weights, tokenizerJson, tokenizerConfig } = await openModel(nodeFileSource(STORIES_DIR));
    expect(config).toMatchObject({ architecture: 'llama', hiddenSize: 64, numLayers: 5, tieWordEmbeddings: true });
    expect(weights.files).toEqual(['model.safetensors']);
    expect((tokenizerJson as { model: { type: string } }).model.type).toBe('BPE');
    expect(tokenizerConfig.eos_token).toBe('</s>');

    const shapes = expectedTensorShapes(config);
    expect(shapes.size).toBe(2 + 9 * 5);
    expect(shapes.has('lm_head.weight')).toBe(false);
    expect(shapes.get('model.layers.0.self_attn.k_proj.weight')).toEqual([32, 64]);
    expect(shapes.get('model.layers.0.mlp.down_proj.weight')).toEqual([64, 172]);
    for (const [name, shape] of shapes) {
      expect(Array.from(await weights.tensor(name, shape)), name).toEqual(Array.from(original.get(name)!.data));
    }
  });

  it('reads only the requested tensor bytes', async () => {
    const disk = nodeFileSource(STORIES_DIR);
    const reads: number[] = [];
    const counting: FileSource = {
      ...disk,
      read: async (p, begin, end) => {
        const bytes = await disk.read(p, begin, end);
        if (p === 'model.safetensors') reads.push(bytes.length);
        return bytes;
      },
    };
    const { weights } = await openModel(counting);
    expect(Math.max(...reads)).toBeLessThan(8 + 4856 + 1);
    reads.length = 0;
    await weights.tensor('model.norm.weight', [64]);
    expect(reads).toEqual([64 * 4]);
  });

  it('checks the requested shape', async () => {
    const { weights } = await openModel(nodeFileSource(STORIES_DIR));
    const err = await rejection(weights.tensor('model.norm.weight', [65]));
    expect(err).toBeInstanceOf(TensorShapeError);
    expect(err.message).toMatch(/model\.safetensors.*model\.norm\.weight.*\[64\].*\[65\]/);
    expect(await rejection(weights.tensor('lm_head.weight', [512, 64]))).toBeInstanceOf(MissingTensorError);
  });

  it('names a missing tensor and its file before reading weights', async () => {
    const dir = await modelFolder({
      'model.safetensors': writeSafetensors(originalTensors().filter((t) => t.name !== 'model.layers.3.mlp.up_proj.weight')),
    });
    const err = (await rejection(openModel(nodeFileSource(dir)))) as MissingTensorError;
    expect(err).toBeInstanceOf(MissingTensorError);
    expect(err.tensor).toBe('model.layers.3.mlp.up_proj.weight');
    expect(err.file).toBe('model.safetensors');
    expect(err.message).toContain('model.layers.3.mlp.up_proj.weight');
    expect(err.message).toContain('model.safetensors');
  });

  it('names a tensor with the wrong shape and the expected shape', async () => {
    const tensors = originalTensors().map((t) => (t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, shape: [64, 32] } : t));
    const dir = await modelFolder({ 'model.safetensors': writeSafetensors(tensors) });
    const err = (await rejection(openModel(nodeFileSource(dir)))) as TensorShapeError;
    expect(err).toBeInstanceOf(TensorShapeError);
    expect(err.tensor).toBe('model.layers.1.self_attn.k_proj.weight');
    expect(err.expectedShape).toEqual([32, 64]);
    expect(err.actualShape).toEqual([64, 32]);
    expect(err.message).toMatch(/model\.safetensors.*k_proj.*\[64, 32\].*\[32, 64\]/);
  });

  it('accepts an lm_head shipped with a tied model and requires it when untied', async () => {
    const withHead = [...originalTensors(), { ...originalTensors()[0], name: 'lm_head.weight' }];
    const dir = await modelFolder({ 'model.safetensors': writeSafetensors(withHead) });
    await openModel(nodeFileSource(dir));

    const config = JSON.parse(await readFile(path.join(STORIES_DIR, 'config.json'), 'utf8'));
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
    const { weights } = await openModel(nodeFileSource(dir));
    expect(Array.from(await weights.tensor('lm_head.weight', [512, 64]))).toEqual(
      Array.from(original.get('model.embed_tokens.weight')!.data),
    );

    await writeFile(path.join(dir, 'model.safetensors'), writeSafetensors(originalTensors()));
    const err = (await rejection(openModel(nodeFileSource(dir)))) as MissingTensorError;
    expect(err.tensor).toBe('lm_head.weight');
  });

  it('loads a sharded split identically', async () => {
    const dir = await modelFolder(splitShards(originalTensors(), (part) => writeSafetensors(part, { format: 'pt' })));
    const { weights } = await openModel(nodeFileSource(dir));
    expect(weights.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    for (const [name, t] of original) expect(Array.from(await weights.tensor(name, t.shape)), name).toEqual(Array.from(t.data));
  });

  it('loads F16 and BF16 shards', async () => {
    const tensors = originalTensors();
    const files = splitShards(tensors, (part) => halfSafetensors(part, part[0] === tensors[0] ? 'F16' : 'BF16'));
    const dir = await modelFolder(files);
    const { weights } = await openModel(nodeFileSource(dir));
    const firstShard = new Set(tensors.slice(0, Math.ceil(tensors.length / 2)).map((t) => t.name));
    for (const [name, t] of original) {
      const got = await weights.tensor(name, t.shape);
      const rel = firstShard.has(name) ? 2 ** -11 : 2 ** -7; // BF16 was made by truncation
      t.data.forEach((x, i) => {
        if (Math.abs(got[i] - x) > rel * Math.abs(x) + 2 ** -24) throw new Error(`${name}[${i}]: ${got[i]} vs ${x}`);
      });
    }
  });

  it('raw() returns a 16-bit tensor as the file stores it, whole or a range of rows; dtype() reads the header only', async () => {
    const tensors = originalTensors();
    const files = splitShards(tensors, (part) => halfSafetensors(part, part[0] === tensors[0] ? 'F16' : 'BF16'));
    const dir = await modelFolder(files);
    const { weights } = await openModel(nodeFileSource(dir));
    const firstShard = new Set(tensors.slice(0, Math.ceil(tensors.length / 2)).map((t) => t.name));
    for (const t of tensors) {
      const dtype = firstShard.has(t.name) ? 'F16' : 'BF16';
      expect(weights.dtype(t.name)).toBe(dtype);
      const raw = await weights.raw(t.name, t.shape);
      expect(raw.dtype).toBe(dtype);
      const expectedBits = Array.from(t.data, (x) => (dtype === 'F16' ? halfBits(x) : f32Bits(x) >>> 16));
      expect(Array.from(new Uint16Array(raw.bytes.slice().buffer)), t.name).toEqual(expectedBits);
      if (t.shape.length === 2 && t.shape[0] > 3) {
        const rows = await weights.raw(t.name, t.shape, [2, 4]);
        expect(Array.from(new Uint16Array(rows.bytes.slice().buffer))).toEqual(expectedBits.slice(2 * t.shape[1], 4 * t.shape[1]));
      }
    }
    const name = tensors[0].name;
    await expect(weights.raw(name, tensors[0].shape, [0, tensors[0].shape[0] + 1])).rejects.toThrow(RangeError);
    expect(() => weights.dtype('model.layers.99.mlp.up_proj.weight')).toThrow(MissingTensorError);
  });

  it('refuses quantized or integer weights up front', async () => {
    const header: Record<string, unknown> = {};
    let offset = 0;
    for (const t of originalTensors()) {
      const dtype = t.name === 'model.norm.weight' ? 'I32' : 'F32';
      header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length * 4] };
      offset += t.data.length * 4;
    }
    const dir = await modelFolder({ 'model.safetensors': rawSafetensors(header, offset) });
    const err = await rejection(openModel(nodeFileSource(dir)));
    expect(err).toBeInstanceOf(UnsupportedModelError);
    expect(err.message).toMatch(/model\.norm\.weight.*I32/);
  });

  it('names missing files and what they are needed for', async () => {
    const noConfig = await modelFolder({}, ['tokenizer.json']);
    let err = (await rejection(openModel(nodeFileSource(noConfig)))) as MissingFileError;
    expect(err).toBeInstanceOf(MissingFileError);
    expect(err.file).toBe('config.json');

    const noTokenizer = await modelFolder({}, ['config.json']);
    err = (await rejection(openModel(nodeFileSource(noTokenizer)))) as MissingFileError;
    expect(err.file).toBe('tokenizer.json');

    const noWeights = await modelFolder({});
    err = (await rejection(openModel(nodeFileSource(noWeights)))) as MissingFileError;
    expect(err.file).toBe('model.safetensors');
    expect(err.message).toContain(noWeights);
    expect(err.message).toContain('model.safetensors.index.json');

    const missingShard = await modelFolder(splitShards(originalTensors(), (part) => writeSafetensors(part)));
    await unlink(path.join(missingShard, 'model-00002-of-00002.safetensors'));
    err = (await rejection(openModel(nodeFileSource(missingShard)))) as MissingFileError;
    expect(err).toBeInstanceOf(MissingFileError);
    expect(err.file).toBe('model-00002-of-00002.safetensors');
  });
});

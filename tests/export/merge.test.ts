import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterTensors } from '../../src/export/adapter';
import { AdapterExportError } from '../../src/export/errors';
import { encodeFloats, mergeAdapterIntoWeights, mergedModelFiles } from '../../src/export/merge';
import { writeFolder } from '../../src/export/node-folder';
import { loraScaling } from '../../src/lora/config';
import type { ModelConfig } from '../../src/model/config';
import { nodeFileSource } from '../../src/model/node-file-source';
import { parseSafetensorsHeader, readSafetensors } from '../../src/model/safetensors';
import { expectedTensorShapes, openModel } from '../../src/model/weights';
import {
  expectBitIdentical,
  expectRefusal,
  goldenAdapter,
  qwen2Config,
  randomAdapter,
  randomValues,
  rawTensors,
  removeTempDirs,
  storiesConfig,
  STORIES_DIR,
  tempDir,
} from './helpers';

let stories: ModelConfig;
let base: Map<string, { shape: number[]; data: Float32Array }>;
let golden: AdapterTensors;
beforeAll(async () => {
  stories = await storiesConfig();
  base = readSafetensors(new Uint8Array(await readFile(path.join(STORIES_DIR, 'model.safetensors'))), 'model.safetensors').tensors;
  golden = await goldenAdapter();
});
afterAll(removeTempDirs);

/** W + s B A element by element: each entry's dot product over r in float64, then one rounding. */
function referenceMerge(W: Float32Array, A: Float32Array, B: Float32Array, out: number, inF: number, r: number, s: number): Float64Array {
  const merged = new Float64Array(out * inF);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inF; i++) {
      let dot = 0;
      for (let k = 0; k < r; k++) dot += B[o * r + k] * A[k * inF + i];
      merged[o * inF + i] = W[o * inF + i] + s * dot;
    }
  return merged;
}

async function collect(files: AsyncIterable<{ path: string; bytes: Uint8Array }>): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const { path: p, bytes } of files) out.set(p, bytes);
  return out;
}

/** Every finite non-negative value of a 16-bit format, ascending with the bit pattern. */
function finiteValues(decode: (bits: number) => number, maxBits: number): Float64Array {
  return Float64Array.from({ length: maxBits + 1 }, (_, b) => decode(b));
}
const bf16Decode = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0];
const f16Decode = (b: number) => {
  const e = (b >> 10) & 0x1f;
  const m = b & 0x3ff;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return b & 0x8000 ? -v : v;
};
const BF16_VALUES = finiteValues(bf16Decode, 0x7f7f);
const F16_VALUES = finiteValues(f16Decode, 0x7bff);

/** Nearest representable value by search over all of them, ties to the even bit pattern. */
function nearestBits(x: number, values: Float64Array): number {
  const a = Math.abs(x);
  let lo = 0;
  let hi = values.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - values[lo];
  const dHi = values[hi] - a;
  const bits = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
  return (x < 0 || Object.is(x, -0) ? 0x8000 : 0) | bits;
}

const u16 = (bytes: Uint8Array) => new Uint16Array(bytes.slice().buffer);

describe('mergeAdapterIntoWeights', () => {
  it('equals W + scaling * B A computed independently', () => {
    const [out, inF, r] = [7, 5, 3];
    const W = randomValues(out * inF, 1);
    const A = randomValues(r * inF, 2);
    const B = randomValues(out * r, 3);
    const merged = mergeAdapterIntoWeights(W, A, B, out, inF, r, 0.75);
    expectBitIdentical(merged, Float32Array.from(referenceMerge(W, A, B, out, inF, r, 0.75)));
    expect(() => mergeAdapterIntoWeights(W, A, B, out, inF + 1, r, 1)).toThrow(RangeError);
  });
});

describe('encodeFloats', () => {
  it('rounds to nearest, ties to even, from float64 without double rounding', () => {
    const cases: [number, number, number][] = [
      // value, f16 bits, bf16 bits
      [1, 0x3c00, 0x3f80],
      [1 + 2 ** -11, 0x3c00, 0x3f80],
      [1 + 3 * 2 ** -11, 0x3c02, 0x3f80],
      // Just above an f16 tie but rounds to the tie in f32: must still round up.
      [1 + 2 ** -11 + 2 ** -40, 0x3c01, 0x3f80],
      [1 + 2 ** -8, 0x3c04, 0x3f80],
      [1 + 2 ** -8 + 2 ** -30, 0x3c04, 0x3f81],
      [1 + 3 * 2 ** -8, 0x3c0c, 0x3f82],
      [-2.5, 0xc100, 0xc020],
      [65519, 0x7bff, 0x4780],
      [65520, 0x7c00, 0x4780],
      [2 ** -24, 0x0001, 0x3380],
      [2 ** -25, 0x0000, 0x3300],
      [2 ** -25 + 2 ** -40, 0x0001, 0x3300],
      [3 * 2 ** -25, 0x0002, 0x33c0],
      [-0, 0x8000, 0x8000],
      [Infinity, 0x7c00, 0x7f80],
      [NaN, 0x7e00, 0x7fc0],
    ];
    for (const [x, f16, bf16] of cases) {
      expect(u16(encodeFloats([x], 'F16'))[0], `F16 of ${x}`).toBe(f16);
      expect(u16(encodeFloats([x], 'BF16'))[0], `BF16 of ${x}`).toBe(bf16);
    }
    expect([...new Float32Array(encodeFloats([1 + 2 ** -24, 1 + 2 ** -24 + 2 ** -50], 'F32').buffer)]).toEqual([1, 1 + 2 ** -23]);
  });

  it('agrees with an exhaustive nearest-value search on random values', () => {
    const values = Float64Array.from(randomValues(20_000, 9), (v, i) => v * 2 ** ((i % 40) - 30));
    const f16 = u16(encodeFloats(values, 'F16'));
    const bf16 = u16(encodeFloats(values, 'BF16'));
    for (let i = 0; i < values.length; i++) {
      expect(f16[i]).toBe(nearestBits(values[i], F16_VALUES));
      expect(bf16[i]).toBe(nearestBits(values[i], BF16_VALUES));
    }
  });
});

describe('mergedModelFiles', () => {
  it('merges the golden adapter into stories260K: merged q/k/v, other tensors and files unchanged, reopens with openModel', async () => {
    const files = await collect(mergedModelFiles(nodeFileSource(STORIES_DIR), golden, { dtype: 'same' }));
    expect([...files.keys()].sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(Buffer.from(files.get(f)!).equals(await readFile(path.join(STORIES_DIR, f))), f).toBe(true);
    }
    const dir = await tempDir('merged');
    await writeFolder(dir, Object.fromEntries(files));
    const opened = await openModel(nodeFileSource(dir));
    expect(opened.config).toEqual(stories);

    const header = parseSafetensorsHeader(files.get('model.safetensors')!, files.get('model.safetensors')!.length, 'model.safetensors');
    expect(header.metadata).toEqual({ format: 'pt' });
    expect([...header.tensors.keys()].sort()).toEqual([...base.keys()].sort());
    const scaling = loraScaling(golden.config);
    expect(scaling).toBe(2);
    for (const [name, shape] of expectedTensorShapes(stories)) {
      const merged = await opened.weights.tensor(name, shape);
      const m = /^model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.weight$/.exec(name);
      if (!m) {
        expectBitIdentical(merged, base.get(name)!.data);
        continue;
      }
      const peft = `base_model.model.${name.slice(0, -'.weight'.length)}`;
      const A = golden.tensors.get(`${peft}.lora_A.weight`)!.data;
      const B = golden.tensors.get(`${peft}.lora_B.weight`)!.data;
      const expected = Float32Array.from(referenceMerge(base.get(name)!.data, A, B, shape[0], shape[1], 4, scaling));
      expectBitIdentical(merged, expected);
      expect(merged).not.toEqual(base.get(name)!.data);
    }
  });

  it('keeps a BF16 base in BF16 (rounded to nearest even), or writes F32 with torch_dtype float32', async () => {
    const dir = await tempDir('bf16-base');
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      await copyFile(path.join(STORIES_DIR, f), path.join(dir, f));
    const bf16Base = new Map<string, Float32Array>();
    const tensors = [...base].map(([name, t]) => {
      const bits = Uint16Array.from(new Uint32Array(t.data.slice().buffer), (b) => b >>> 16);
      bf16Base.set(name, Float32Array.from(bits, bf16Decode));
      return { name, dtype: 'BF16', shape: t.shape, bytes: new Uint8Array(bits.buffer) };
    });
    await writeFile(path.join(dir, 'model.safetensors'), rawTensors(tensors));
    const adapter = randomAdapter(stories, { r: 2, alpha: 3, targets: ['o_proj', 'down_proj'] });
    const scaling = 1.5;
    const q = 'model.layers.1.self_attn.q_proj.weight';
    const o = 'model.layers.1.self_attn.o_proj.weight';
    const down = 'model.layers.3.mlp.down_proj.weight';
    const lora = (name: string, m: 'A' | 'B') =>
      adapter.tensors.get(`base_model.model.${name.slice(0, -'.weight'.length)}.lora_${m}.weight`)!.data;

    const same = await collect(mergedModelFiles(nodeFileSource(dir), adapter, { dtype: 'same' }));
    const sameBytes = same.get('model.safetensors')!;
    const sameHeader = parseSafetensorsHeader(sameBytes, sameBytes.length, 'model.safetensors');
    expect(new Set([...sameHeader.tensors.values()].map((i) => i.dtype))).toEqual(new Set(['BF16']));
    const raw = (name: string) => {
      const info = sameHeader.tensors.get(name)!;
      return u16(sameBytes.subarray(sameHeader.dataStart + info.begin, sameHeader.dataStart + info.end));
    };
    expect(raw(q)).toEqual(u16(tensors.find((t) => t.name === q)!.bytes));
    for (const [name, [out, inF]] of [
      [o, [64, 64]],
      [down, [64, 172]],
    ] as const) {
      const exact = referenceMerge(bf16Base.get(name)!, lora(name, 'A'), lora(name, 'B'), out, inF, 2, scaling);
      expect(raw(name)).toEqual(Uint16Array.from(exact, (x) => nearestBits(x, BF16_VALUES)));
    }
    expect(same.get('config.json')).toEqual(new Uint8Array(await readFile(path.join(dir, 'config.json'))));

    const f32 = await collect(mergedModelFiles(nodeFileSource(dir), adapter, { dtype: 'f32' }));
    const f32Dir = await tempDir('f32-merged');
    await writeFolder(f32Dir, Object.fromEntries(f32));
    const opened = await openModel(nodeFileSource(f32Dir));
    expect(JSON.parse(new TextDecoder().decode(f32.get('config.json')!)).torch_dtype).toBe('float32');
    const f32Bytes = f32.get('model.safetensors')!;
    expect(new Set([...parseSafetensorsHeader(f32Bytes, f32Bytes.length, 'm').tensors.values()].map((i) => i.dtype))).toEqual(
      new Set(['F32']),
    );
    expectBitIdentical(await opened.weights.tensor(q, [64, 64]), bf16Base.get(q)!);
    expectBitIdentical(
      await opened.weights.tensor(down, [64, 172]),
      Float32Array.from(referenceMerge(bf16Base.get(down)!, lora(down, 'A'), lora(down, 'B'), 64, 172, 2, scaling)),
    );
  });

  it('shards above maxShardBytes with an index, and merges from a sharded base', async () => {
    const adapter = randomAdapter(stories, { r: 2, targets: ['gate_proj', 'up_proj'] });
    const single = await collect(mergedModelFiles(nodeFileSource(STORIES_DIR), adapter, { dtype: 'same' }));
    const sharded = await collect(mergedModelFiles(nodeFileSource(STORIES_DIR), adapter, { dtype: 'same', maxShardBytes: 200_000 }));
    const shardNames = [...sharded.keys()].filter((p) => p.endsWith('.safetensors')).sort();
    expect(shardNames.length).toBeGreaterThan(2);
    expect(shardNames[0]).toBe(`model-00001-of-${String(shardNames.length).padStart(5, '0')}.safetensors`);
    expect(sharded.has('model.safetensors')).toBe(false);
    const index = JSON.parse(new TextDecoder().decode(sharded.get('model.safetensors.index.json')!));
    expect(Object.keys(index.weight_map).sort()).toEqual([...base.keys()].sort());
    const fromSingle = readSafetensors(single.get('model.safetensors')!, 'model.safetensors').tensors;
    expect(index.metadata.total_size).toBe([...fromSingle.values()].reduce((s, t) => s + t.data.byteLength, 0));
    for (const name of shardNames) {
      const bytes = sharded.get(name)!;
      expect(bytes.length - parseSafetensorsHeader(bytes, bytes.length, name).dataStart).toBeLessThanOrEqual(200_000);
    }

    const dir = await tempDir('sharded');
    await writeFolder(dir, Object.fromEntries(sharded));
    const opened = await openModel(nodeFileSource(dir));
    for (const [name, t] of fromSingle) expectBitIdentical(await opened.weights.tensor(name, t.shape), t.data);

    // Merging a zero adapter into the sharded folder reproduces it.
    const zero = randomAdapter(stories, { r: 1, targets: ['v_proj'] });
    for (const [name, t] of zero.tensors) if (name.includes('lora_B')) t.data.fill(0);
    const again = await collect(mergedModelFiles(nodeFileSource(dir), zero, { dtype: 'same' }));
    const reread = readSafetensors(again.get('model.safetensors')!, 'model.safetensors').tensors;
    for (const [name, t] of fromSingle) expectBitIdentical(reread.get(name)!.data, t.data);
  });

  it('refuses an adapter for another model', async () => {
    await expectRefusal(
      () => collect(mergedModelFiles(nodeFileSource(STORIES_DIR), randomAdapter(qwen2Config()), { dtype: 'same' })),
      AdapterExportError,
      'Cannot merge the adapter into',
      'different base model',
    );
  });
});

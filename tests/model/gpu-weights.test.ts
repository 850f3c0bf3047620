import { describe, expect, it } from 'vitest';
import { allocatedSize, asRange, type Binding, Gpu } from '../../src/gpu/context';
import { WeightRangeError } from '../../src/model/errors';
import { destroyWeights, uploadWeights, vocabRowsPerPiece } from '../../src/model/gpu-weights';
import type { RawTensor } from '../../src/model/weight-format';
import { testGpu } from '../helpers/gpu';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';
import { roundTo } from '../reference/weight-rounding';

// An odd hidden size: rows of a 16-bit matrix start mid-word and vocabulary pieces start at odd
// element offsets. Only uploaded, never run.
const config = tinyConfig({ hiddenSize: 33, vocabSize: 41 });
const f32 = tinyWeights(config, 11);
const isMatrix = (name: string) => !name.endsWith('norm.weight') && !name.endsWith('.bias');

/** The same model stored BF16 (truncated, so every value is exact in bf16), as the hub ships it. */
function bf16Checkpoint(): { tensors: Map<string, Float32Array | RawTensor>; bits: Map<string, Uint16Array> } {
  const tensors = new Map<string, Float32Array | RawTensor>();
  const bits = new Map<string, Uint16Array>();
  for (const [name, data] of f32) {
    const halves = Uint16Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length), (b) => b >>> 16);
    bits.set(name, halves);
    tensors.set(name, { dtype: 'BF16', bytes: new Uint8Array(halves.buffer) });
  }
  return { tensors, bits };
}

/** A Gpu whose device claims a small binding limit, so the 41-row vocabulary splits into pieces. */
async function smallBindingGpu(maxStorageBufferBindingSize: number): Promise<Gpu> {
  const shared = await testGpu();
  const limits: Record<string, number> = {};
  for (const key in shared.device.limits) limits[key] = (shared.device.limits as unknown as Record<string, number>)[key];
  limits.maxStorageBufferBindingSize = maxStorageBufferBindingSize;
  const device = new Proxy(shared.device, {
    get(target, prop) {
      if (prop === 'limits') return limits;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new Gpu(device);
}

const halvesOf = async (gpu: Gpu, buffer: Binding, count: number) => new Uint16Array(await gpu.read(buffer), 0, count);

describe('uploading weights in their precision', () => {
  it("a BF16 checkpoint under 'auto' is on the GPU bit for bit as in the file; norms and biases are f32", async () => {
    const gpu = await testGpu();
    const { tensors, bits } = bf16Checkpoint();
    const weights = await uploadWeights(gpu, config, memoryWeightsSource(config, tensors));
    expect(weights.precision).toBe('bf16');
    expect(weights.embedding.format).toBe('bf16');
    const q = weights.layers[1].q;
    expect(q.format).toBe('bf16');
    const qBits = bits.get('model.layers.1.self_attn.q_proj.weight')!;
    expect(Array.from(await halvesOf(gpu, q.buffer, qBits.length))).toEqual(Array.from(qBits));
    const embBits = bits.get('model.embed_tokens.weight')!;
    expect(Array.from(await halvesOf(gpu, weights.embedding.pieces[0].weight as GPUBuffer, embBits.length))).toEqual(Array.from(embBits));
    const norm = new Float32Array(await gpu.read(weights.layers[0].inputNorm), 0, config.hiddenSize);
    expect(Array.from(norm)).toEqual(
      Array.from(bits.get('model.layers.0.input_layernorm.weight')!, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]),
    );
    // Half the bytes of the f32 upload for the matrices.
    const f32Weights = await uploadWeights(gpu, config, memoryWeightsSource(config, f32));
    expect(f32Weights.precision).toBe('f32');
    let matrixElements = 0;
    let vectorElements = 0;
    for (const [name, data] of f32) isMatrix(name) ? (matrixElements += data.length) : (vectorElements += data.length);
    expect(f32Weights.bytes).toBe(4 * (matrixElements + vectorElements));
    expect(weights.bytes).toBeGreaterThanOrEqual(2 * matrixElements + 4 * vectorElements);
    expect(weights.bytes).toBeLessThan(2 * matrixElements + 4 * vectorElements + 4 * 64);
    destroyWeights(weights);
    destroyWeights(f32Weights);
  });

  it("'f32' widens a BF16 checkpoint exactly; 'bf16' rounds an F32 one to nearest even", async () => {
    const gpu = await testGpu();
    const name = 'model.layers.0.mlp.down_proj.weight';
    const widened = await uploadWeights(gpu, config, memoryWeightsSource(config, bf16Checkpoint().tensors), { precision: 'f32' });
    expect(widened.precision).toBe('f32');
    const down = new Float32Array(await gpu.read(widened.layers[0].down.buffer), 0, f32.get(name)!.length);
    const truncated = bf16Checkpoint().bits.get(name)!;
    expect(Array.from(down)).toEqual(Array.from(truncated, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]));
    const rounded = await uploadWeights(gpu, config, memoryWeightsSource(config, f32), { precision: 'bf16' });
    expect(rounded.layers[0].down.format).toBe('bf16');
    const got = await halvesOf(gpu, rounded.layers[0].down.buffer, f32.get(name)!.length);
    const expected = Array.from(f32.get(name)!, (x) => roundTo('bf16', x));
    expect(Array.from(got, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0])).toEqual(expected);
    destroyWeights(widened);
    destroyWeights(rounded);
  });

  it('stacks q/k/v (and their biases) into one buffer when they share a format, bit for bit and in no more bytes', async () => {
    const gpu = await testGpu();
    const { tensors, bits } = bf16Checkpoint();
    const weights = await uploadWeights(gpu, config, memoryWeightsSource(config, tensors));
    const layer = weights.layers[1];
    expect(layer.qkvStacked).toBe(true);
    const ranges = [layer.q.buffer, layer.k.buffer, layer.v.buffer].map(asRange);
    expect(new Set(ranges.map((r) => r.buffer)).size).toBe(1);
    // 33 x 33 and 11 x 33 bf16 values: each part in the 16-byte multiple it would get as a buffer of its own.
    expect(ranges[0].buffer.size).toBe(ranges.reduce((sum, r) => sum + allocatedSize(r.size), 0));
    for (const [i, t] of (['q_proj', 'k_proj', 'v_proj'] as const).entries()) {
      const want = bits.get(`model.layers.1.self_attn.${t}.weight`)!;
      expect(Array.from(await halvesOf(gpu, ranges[i], want.length)), t).toEqual(Array.from(want));
      const bias = [layer.qBias, layer.kBias, layer.vBias][i]!;
      const biasBits = bits.get(`model.layers.1.self_attn.${t}.bias`)!;
      expect(asRange(bias).buffer).toBe(asRange(layer.qBias!).buffer);
      const widened = Array.from(biasBits, (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]);
      expect(Array.from(await gpu.readF32(bias, biasBits.length)), `${t} bias`).toEqual(widened);
    }
    destroyWeights(weights);
    // v_proj in another dtype (as GGUF mixes store it): three buffers.
    const mixed = new Map(tensors);
    mixed.set('model.layers.1.self_attn.v_proj.weight', f32.get('model.layers.1.self_attn.v_proj.weight')!);
    const apart = await uploadWeights(gpu, config, memoryWeightsSource(config, mixed));
    expect(apart.layers[1].qkvStacked).toBe(false);
    expect(apart.layers[1].v.format).toBe('f32');
    expect(asRange(apart.layers[1].q.buffer).buffer).not.toBe(asRange(apart.layers[1].k.buffer).buffer);
    destroyWeights(apart);
  });

  it("'f16' refuses an F32 value beyond +-65504 with the tensor's name", async () => {
    const gpu = await testGpu();
    const tensors = new Map(f32);
    const big = Float32Array.from(f32.get('model.layers.1.mlp.up_proj.weight')!);
    big[17] = 70000;
    tensors.set('model.layers.1.mlp.up_proj.weight', big);
    const upload = uploadWeights(gpu, config, memoryWeightsSource(config, tensors), { precision: 'f16' });
    await expect(upload).rejects.toThrow(WeightRangeError);
    await expect(uploadWeights(gpu, config, memoryWeightsSource(config, tensors), { precision: 'f16' })).rejects.toThrow(
      /tensor "model\.layers\.1\.mlp\.up_proj\.weight" holds 70000 \(element 17\)/,
    );
  });

  it('splits the vocabulary by the binding limit counting 16-bit rows, every row in exactly one piece', async () => {
    // A row of 33 values is 132 bytes in f32 and 66 in bf16: an 800-byte binding holds 6 or 12 rows.
    const gpu = await smallBindingGpu(800);
    expect(vocabRowsPerPiece(gpu, 33, 'f32')).toBe(6);
    expect(vocabRowsPerPiece(gpu, 33, 'bf16')).toBe(12);
    const { tensors, bits } = bf16Checkpoint();
    const weights = await uploadWeights(gpu, config, memoryWeightsSource(config, tensors));
    const { pieces } = weights.lmHead;
    expect(pieces.map((p) => [p.rowStart, p.rows])).toEqual([
      [0, 12],
      [12, 12],
      [24, 12],
      [36, 5],
    ]);
    const all = bits.get('lm_head.weight')!;
    for (const piece of pieces) {
      const got = await halvesOf(gpu, piece.weight as GPUBuffer, piece.rows * 33);
      expect(Array.from(got)).toEqual(Array.from(all.subarray(piece.rowStart * 33, (piece.rowStart + piece.rows) * 33)));
      expect((piece.weight as GPUBuffer).size).toBeLessThanOrEqual(800);
    }
    destroyWeights(weights);
  });
});

import { describe, expect, it } from 'vitest';
import { WeightRangeError } from '../../src/model/errors';
import { chosenFormat, encodeWeights, packedBytes, type RawTensor, storedBytes } from '../../src/model/weight-format';
import { randomArray } from '../helpers/numeric';
import { decode16, roundTo } from '../reference/weight-rounding';

const f32Bytes = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
const halves = (words: Uint32Array) => new Uint16Array(words.buffer, words.byteOffset, words.byteLength / 2);

// Ties in both directions, values just either side of a tie, subnormals of both formats, the f16
// extremes, signed zeros and values with all mantissa bits set.
const EDGES = Float32Array.from([
  0,
  -0,
  1,
  -1,
  1 + 2 ** -8,
  1 + 3 * 2 ** -8,
  1 + 2 ** -8 + 2 ** -20,
  1 + 2 ** -11,
  1 + 3 * 2 ** -11,
  1 - 2 ** -24,
  65504,
  -65504,
  65503.99,
  2 ** -14,
  2 ** -15,
  2 ** -24,
  2 ** -25,
  3 * 2 ** -25,
  2 ** -26,
  6.1e-5,
  1e-8,
  2 ** -130,
  3e38,
  -3.3e38,
  0.1,
  -0.7,
  1234.5678,
  2 ** -14 - 2 ** -25,
]);
const VALUES = Float32Array.from([...EDGES, ...randomArray(997, 5, -3, 3), ...randomArray(101, 6, -1e-4, 1e-4)]);

describe('weight formats: host encoding', () => {
  for (const format of ['bf16', 'f16'] as const) {
    it(`F32 to ${format} rounds every value to nearest even, as the float64 reference does`, () => {
      const values = format === 'f16' ? VALUES.filter((v) => Math.abs(v) <= 65504) : VALUES;
      const packed = halves(encodeWeights({ dtype: 'F32', bytes: f32Bytes(values) }, format, 'model.safetensors', 'w'));
      expect(packed.length).toBe(values.length + (values.length % 2));
      for (let i = 0; i < values.length; i++) {
        expect(Object.is(decode16(format, packed[i]), roundTo(format, values[i])), `${format}(${values[i]})`).toBe(true);
      }
      // An odd count pads the last word with zero bits.
      if (values.length % 2) expect(packed[values.length]).toBe(0);
    });
  }

  it('F32 to f16 refuses a value beyond +-65504, naming the tensor and the element', () => {
    const values = Float32Array.from([1, 2, -65520, 3]);
    let error: unknown;
    try {
      encodeWeights({ dtype: 'F32', bytes: f32Bytes(values) }, 'f16', 'model.safetensors', 'model.layers.3.mlp.down_proj.weight');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(WeightRangeError);
    expect((error as WeightRangeError).tensor).toBe('model.layers.3.mlp.down_proj.weight');
    expect((error as WeightRangeError).index).toBe(2);
    expect((error as Error).message).toMatch(
      /model\.safetensors: tensor "model\.layers\.3\.mlp\.down_proj\.weight" holds -65520 \(element 2\)/,
    );
    expect((error as Error).message).toMatch(/bf16/);
  });

  it('a BF16 or F16 tensor kept in its format is the checkpoint bytes, not a copy when aligned', () => {
    for (const [dtype, format] of [
      ['BF16', 'bf16'],
      ['F16', 'f16'],
    ] as const) {
      const bytes = new Uint8Array(Uint16Array.from({ length: 10 }, (_, i) => 0x3f00 + 17 * i).buffer);
      const words = encodeWeights({ dtype, bytes }, format, 'f', 't');
      expect(words.buffer).toBe(bytes.buffer);
      expect(Array.from(halves(words))).toEqual(Array.from(new Uint16Array(bytes.buffer)));
      // Odd element counts and unaligned reads are copied into whole words, bits unchanged.
      const odd = bytes.subarray(2, 8);
      const copied = halves(encodeWeights({ dtype, bytes: odd }, format, 'f', 't'));
      expect(Array.from(copied)).toEqual([...Array.from(new Uint16Array(bytes.buffer, 2, 3)), 0]);
    }
  });

  it('16-bit checkpoints convert exactly to f32, and BF16 to f16 / F16 to bf16 round like F32 would', () => {
    // 65504 itself rounds up to 65536 in bf16, out of f16's range (the previous test covers that refusal).
    const values = VALUES.filter((v) => Math.abs(roundTo('bf16', v)) <= 65504);
    const bf16 = halves(encodeWeights({ dtype: 'F32', bytes: f32Bytes(values) }, 'bf16', 'f', 't')).subarray(0, values.length);
    const raw: RawTensor = { dtype: 'BF16', bytes: new Uint8Array(bf16.buffer, bf16.byteOffset, bf16.byteLength) };
    const widened = new Float32Array(encodeWeights(raw, 'f32', 'f', 't').buffer);
    for (let i = 0; i < values.length; i++) expect(Object.is(widened[i], decode16('bf16', bf16[i]))).toBe(true);
    const toF16 = halves(encodeWeights(raw, 'f16', 'f', 't'));
    for (let i = 0; i < values.length; i++) expect(Object.is(decode16('f16', toF16[i]), roundTo('f16', widened[i]))).toBe(true);
    const f16 = toF16.subarray(0, values.length);
    const backToBf16 = halves(encodeWeights({ dtype: 'F16', bytes: new Uint8Array(f16.buffer, 0, f16.byteLength) }, 'bf16', 'f', 't'));
    for (let i = 0; i < values.length; i++) {
      expect(Object.is(decode16('bf16', backToBf16[i]), roundTo('bf16', decode16('f16', f16[i])))).toBe(true);
    }
  });

  it("'auto' keeps each checkpoint dtype; a format asks for one format; packed buffers are whole words", () => {
    expect([chosenFormat('F32', 'auto'), chosenFormat('BF16', 'auto'), chosenFormat('F16', 'auto')]).toEqual(['f32', 'bf16', 'f16']);
    expect(chosenFormat('F32', 'bf16')).toBe('bf16');
    expect(chosenFormat('BF16', 'f32')).toBe('f32');
    expect([packedBytes('f32', 3), packedBytes('bf16', 3), packedBytes('f16', 4)]).toEqual([12, 8, 8]);
  });
});

describe('GGUF block formats', () => {
  it('store whole blocks (ggml sizes) padded to whole u32 words, and refuse a partial block', () => {
    // One row of 256 values: Q8_0 8 blocks of 34, Q4_0 of 18, Q5_0 of 22, Q5_1 of 24; Q4_K 144, Q5_K 176, Q6_K 210 per 256.
    const row = (['q8_0', 'q4_0', 'q5_0', 'q5_1', 'q4_k', 'q5_k', 'q6_k'] as const).map((f) => storedBytes(f, 256));
    expect(row).toEqual([272, 144, 176, 192, 144, 176, 210]);
    // Bits per weight: 8.5, 4.5, 5.5, 6, 4.5, 5.5, 6.5625.
    expect(row.map((bytes) => (8 * bytes) / 256)).toEqual([8.5, 4.5, 5.5, 6, 4.5, 5.5, 6.5625]);
    expect([packedBytes('q6_k', 256), packedBytes('q4_0', 32), packedBytes('q8_0', 64)]).toEqual([212, 20, 68]);
    expect(() => storedBytes('q4_k', 128)).toThrow(/not whole blocks of 256/);
  });
});

import { describe, expect, it } from 'vitest';
import { ggmlByteSize, ggmlType, type GgmlTypeName } from '../../src/gguf/ggml-types';
import { dequantize, fitsBlocks, quantize, QuantizationError } from '../../src/gguf/quants';
import { randomArray } from '../helpers/numeric';
import { nearestOnGrid, refDequantize, refValue } from '../reference/ggml-quants';
import { awkwardValues, randomBlocks } from './quant-data';

const BLOCK_FORMATS: GgmlTypeName[] = ['Q8_0', 'Q4_0', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];

const rms = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0) / a.length);

describe('block quantizers against the reference decoder', () => {
  // 3 rows of 512: two K super-blocks or sixteen 32-blocks per row, every kind of block in each.
  const rowLength = 512;
  const x = awkwardValues(3 * rowLength, 5);

  for (const format of BLOCK_FORMATS) {
    it(`${format}: dequantize matches the reference bit for bit, and every value is its grid's nearest point`, () => {
      const bytes = quantize(format, x, rowLength);
      expect(bytes.length).toBe(ggmlByteSize(ggmlType(format), x.length));
      const ours = dequantize(format, bytes, x.length);
      const ref = refDequantize(format, bytes, x.length);
      expect(Array.from(ours)).toEqual(Array.from(ref));

      for (let v = 0; v < x.length; v++) {
        const grid = refValue(format, bytes, v);
        const nearest = nearestOnGrid(grid, x[v]);
        // Ties may round either way; anything else off the nearest point is a quantizer bug.
        const slack = Math.abs(grid.step) * 1e-6;
        if (Math.abs(Math.abs(x[v] - ours[v]) - Math.abs(x[v] - nearest)) > slack) {
          expect.fail(`${format} value ${v}: ${x[v]} became ${ours[v]}, but ${nearest} is nearer on its grid`);
        }
      }
    });
  }

  // Blocks whose scale is an f16 subnormal (|d| < 2^-14, the 1e-6 blocks) have a coarser d than
  // max|x| / 127; the nearest-point property above still holds for them.
  const NORMAL_HALF = 2 ** -14;

  it('Q8_0: |error| <= d / 2 in every block, with d = max|x| / 127 rounded to f16', () => {
    const bytes = quantize('Q8_0', x, rowLength);
    const ours = dequantize('Q8_0', bytes, x.length);
    let checked = 0;
    for (let b = 0; b < x.length / 32; b++) {
      const d = refValue('Q8_0', bytes, 32 * b).step;
      if (d < NORMAL_HALF) continue;
      checked++;
      const amax = Math.max(...Array.from(x.subarray(32 * b, 32 * b + 32), Math.abs));
      expect(Math.abs(d - amax / 127)).toBeLessThanOrEqual((amax / 127) * 2 ** -11 + 2 ** -25);
      for (let j = 0; j < 32; j++) expect(Math.abs(ours[32 * b + j] - x[32 * b + j])).toBeLessThanOrEqual(d / 2 + amax * 2 ** -12);
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('Q4_0: the largest-magnitude value of each block is exact up to f16 rounding of d, others within |d| / 2 or clamped to 7d', () => {
    const bytes = quantize('Q4_0', x, rowLength);
    const ours = dequantize('Q4_0', bytes, x.length);
    let checked = 0;
    for (let b = 0; b < x.length / 32; b++) {
      const block = Array.from(x.subarray(32 * b, 32 * b + 32));
      const extreme = block.reduce((m, v) => (Math.abs(v) > Math.abs(m) ? v : m), 0);
      const d = refValue('Q4_0', bytes, 32 * b).step;
      if (Math.abs(d) < NORMAL_HALF) continue;
      checked++;
      expect(Math.abs(d + extreme / 8)).toBeLessThanOrEqual((Math.abs(extreme) / 8) * 2 ** -11 + 2 ** -25);
      for (let j = 0; j < 32; j++) {
        const err = Math.abs(ours[32 * b + j] - block[j]);
        expect(err).toBeLessThanOrEqual(block[j] / d > 7.5 ? Math.abs(d) + 1e-12 : Math.abs(d) / 2 + 1e-12);
      }
    }
    expect(checked).toBeGreaterThan(30);
  });

  it('RMS error relative to the weights stays at the bits each format spends', () => {
    // Gaussian weights only (no outlier blocks): what real layers look like.
    const u = randomArray(4 * 8192, 9);
    const g = Float32Array.from({ length: 8192 }, (_, i) => u[4 * i] + u[4 * i + 1] + u[4 * i + 2] + u[4 * i + 3]);
    const errors: Record<string, number> = {};
    for (const format of BLOCK_FORMATS) {
      const y = dequantize(format, quantize(format, g, 1024), g.length);
      errors[format] = rms(y.map((v, i) => v - g[i])) / rms(g);
    }
    expect(errors.Q8_0).toBeLessThan(0.006);
    expect(errors.Q6_K).toBeLessThan(0.025);
    expect(errors.Q5_K).toBeLessThan(0.045);
    expect(errors.Q4_K).toBeLessThan(0.09);
    expect(errors.Q4_0).toBeLessThan(0.12);
    expect(errors.Q5_0).toBeLessThan(0.06);
    expect(errors.Q5_1).toBeLessThan(0.05);
    expect(errors.Q5_0).toBeLessThan(errors.Q4_0);
    console.info('relative RMS error by format', errors);
    // More bits, less error.
    expect(errors.Q8_0).toBeLessThan(errors.Q6_K);
    expect(errors.Q6_K).toBeLessThan(errors.Q5_K);
    expect(errors.Q5_K).toBeLessThan(errors.Q4_K);
  });
});

describe('dequantizers on arbitrary blocks', () => {
  for (const format of BLOCK_FORMATS) {
    it(`${format} reads every bit pattern as the reference does`, () => {
      const { blockSize } = ggmlType(format);
      const blocks = 40;
      const bytes = randomBlocks(format, blocks, 3);
      const ours = dequantize(format, bytes, blocks * blockSize);
      expect(Array.from(ours)).toEqual(Array.from(refDequantize(format, bytes, blocks * blockSize)));
      expect(ours.some((v) => v !== 0)).toBe(true);
    });
  }

  it('F32, F16 and BF16 round-trip through the encoders and match the reference decoder', () => {
    const x = awkwardValues(256, 4);
    for (const format of ['F32', 'F16', 'BF16'] as const) {
      const bytes = quantize(format, x, 64);
      expect(bytes.length).toBe(x.length * (format === 'F32' ? 4 : 2));
      const ours = dequantize(format, bytes, x.length);
      expect(Array.from(ours)).toEqual(Array.from(refDequantize(format, bytes, x.length)));
      const tolerance = format === 'F32' ? 0 : format === 'F16' ? 2 ** -11 : 2 ** -8;
      for (let i = 0; i < x.length; i++) {
        if (Math.abs(x[i]) > 1e-4) expect(Math.abs(ours[i] - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) * tolerance);
      }
    }
  });
});

describe('refusals', () => {
  it('refuses rows that are not a whole number of blocks, naming the row length and the fallback', () => {
    expect(fitsBlocks('Q8_0', 172)).toBe(false);
    expect(fitsBlocks('Q8_0', 64)).toBe(true);
    expect(fitsBlocks('Q4_K', 64)).toBe(false);
    expect(() => quantize('Q8_0', new Float32Array(172 * 2), 172)).toThrow(QuantizationError);
    expect(() => quantize('Q8_0', new Float32Array(172 * 2), 172)).toThrow(/rows of 172 values as Q8_0.*multiple of 32.*F16 or F32/);
    expect(() => quantize('Q4_K', new Float32Array(64 * 8), 64)).toThrow(/rows of 64 values as Q4_K.*multiple of 256/);
    expect(() => quantize('Q6_K', new Float32Array(64 * 8), 64)).toThrow(QuantizationError);
  });

  it('refuses non-finite weights and values that are not whole rows', () => {
    const x = new Float32Array(64);
    x[5] = NaN;
    expect(() => quantize('Q4_0', x, 32)).toThrow(/value 5 is NaN/);
    x[5] = Infinity;
    expect(() => quantize('Q8_0', x, 32)).toThrow(QuantizationError);
    expect(() => quantize('Q8_0', new Float32Array(70), 32)).toThrow(RangeError);
    expect(() => dequantize('Q4_K', new Uint8Array(143), 256)).toThrow(RangeError);
  });
});

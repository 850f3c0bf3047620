/**
 * The grouped forward product (matmulXWtGroups): one dispatch computing Y_g = X W_g^T (+ bias_g) for
 * up to three groups that share X, as q/k/v do. Against the float64 product of each group on its own,
 * with each schedule forced; every group's output starts as NaN (overwrite, never read) and the values
 * around and between the groups' outputs must survive.
 */
import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/gpu/context';
import { matmulXWtGroups } from '../../src/kernels/matmul';
import { dequantize } from '../../src/gguf/quants';
import { asWords, BLOCK_LAYOUTS, type WeightFormat } from '../../src/model/weight-format';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type OpCase } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { randomBlocks } from '../helpers/random-blocks';
import { combineRef, matmulXWtRef } from '../reference/matmul';
import { roundAllTo } from '../reference/weight-rounding';

type Schedule = 'direct' | 'tiled' | 'vec4';

interface GroupCase {
  M: number;
  K: number;
  widths: number[];
  bias?: boolean;
  /** Floats between consecutive groups' weights (0: stacked, as the uploader concatenates q/k/v). */
  wGap?: number;
  format?: WeightFormat;
}

const at = (binding: Binding, byteOffset: number, bytes: number): Binding => ({
  buffer: binding as GPUBuffer,
  offset: byteOffset,
  size: bytes,
});

function groupCase(schedule: Schedule, { M, K, widths, bias = false, wGap = 0, format = 'f32' }: GroupCase): OpCase {
  const x = randomArray(M * K, 81 + M);
  const block = format !== 'f32' && format !== 'bf16' && format !== 'f16';
  // W pool: the groups' rows one after another, wGap floats apart; weights as the GPU reads them (rounded or decoded) in w64.
  const wStarts = widths.map((_, g) => widths.slice(0, g).reduce((s, n) => s + n * K + wGap, 0));
  const wFloats = wStarts[widths.length - 1] + widths[widths.length - 1] * K + 3;
  let wInput: Uint32Array | Float32Array;
  let w64: Float64Array;
  if (block) {
    const { bytes, type } = randomBlocks(format, wFloats - 3, 91);
    wInput = asWords(bytes);
    w64 = toF64(dequantize(type, bytes, wFloats - 3));
  } else {
    const pool = randomArray(wFloats, 92);
    wInput = format === 'f32' ? pool : packWeights(pool, format);
    w64 = format === 'f32' ? toF64(pool) : roundAllTo(format, pool);
  }
  const wBytes = (elements: number) =>
    block ? (elements / BLOCK_LAYOUTS[format].blockSize) * BLOCK_LAYOUTS[format].blockBytes : elements * (format === 'f32' ? 4 : 2);
  const biasPool = randomArray(widths.reduce((s, n) => s + n, 0) + 5, 93);
  const biasStarts = widths.map((_, g) => 5 + widths.slice(0, g).reduce((s, n) => s + n, 0));
  // Y pool: each group's [M, N_g] at a 256-byte boundary as the workspace lays q/k/v out, NaN inside, values around.
  const yStarts = widths.map((_, g) => 64 + widths.slice(0, g).reduce((s, n) => s + Math.ceil((M * n + 7) / 64) * 64, 0));
  const yFloats = yStarts[widths.length - 1] + Math.ceil((M * widths[widths.length - 1] + 7) / 64) * 64;
  const yPool = randomArray(yFloats, 94);
  const expected = toF64(yPool);
  widths.forEach((n, g) => {
    yPool.fill(NaN, yStarts[g], yStarts[g] + M * n);
    const w = w64.subarray(wStarts[g], wStarts[g] + n * K);
    const b = bias ? toF64(biasPool.subarray(biasStarts[g], biasStarts[g] + n)) : undefined;
    expected.set(combineRef(matmulXWtRef(toF64(x), w, M, n, K), 1, 0, undefined, b), yStarts[g]);
  });
  return {
    inputs: { x, w: wInput, bias: biasPool },
    outputs: { y: yPool },
    run: (gpu, t) =>
      matmulXWtGroups(
        gpu,
        {
          X: t.x,
          groups: widths.map((N, g) => ({
            N,
            W: at(t.w, wBytes(wStarts[g]), wBytes(N * K)),
            Y: at(t.y, yStarts[g] * 4, M * N * 4),
            bias: bias ? at(t.bias, biasStarts[g] * 4, N * 4) : undefined,
          })),
        },
        { M, K },
        { schedule, format },
      ),
    expected: { y: { values: expected, atol: block ? 2e-4 : 2e-5, rtol: 1e-4 } },
  };
}

// 67/23/23: no group a multiple of the 4-wide block or the 64-wide tile, so blocks and tiles straddle
// groups; GQA 3:1 at head dim 72 (H = 3, KV = 1); two LoRA-A-shaped groups (r = 3) with gaps between their weights.
const CASES: GroupCase[] = [
  { M: 7, K: 67, widths: [67, 23, 23] },
  { M: 70, K: 67, widths: [67, 23, 23], bias: true },
  { M: 70, K: 67, widths: [216, 72, 72], bias: true },
  { M: 7, K: 67, widths: [3, 3, 3], wGap: 61 },
  { M: 70, K: 67, widths: [3, 3], wGap: 5 },
  { M: 7, K: 67, widths: [35] },
];

describe('grouped X W^T (q/k/v in one dispatch)', () => {
  for (const schedule of ['direct', 'tiled', 'vec4'] as const) {
    it(`${schedule}: every group matches its own float64 product and nothing outside the groups' outputs changes`, async () => {
      const gpu = await testGpu();
      for (const c of CASES) await checkOp(gpu, groupCase(schedule, c));
    });
    it(`${schedule}: bf16 weights stacked at odd element offsets (groups start mid-word)`, async () => {
      const gpu = await testGpu();
      await checkOp(gpu, groupCase(schedule, { M: 7, K: 67, widths: [67, 23, 23], bias: true, format: 'bf16' }));
    });
  }

  it('q8_0 weights stacked by whole rows of blocks (direct and tiled)', async () => {
    const gpu = await testGpu();
    for (const schedule of ['direct', 'tiled'] as const) {
      await checkOp(gpu, groupCase(schedule, { M: 7, K: 64, widths: [67, 23, 23], format: 'q8_0' }));
    }
  });

  it('refuses groups whose weights are not ranges of one buffer, and mixed biases', async () => {
    const gpu = await testGpu();
    const a = gpu.createBuffer(4096, 'a');
    const b = gpu.createBuffer(4096, 'b');
    const y = gpu.createBuffer(4096, 'y');
    const group = (W: GPUBuffer, bias?: GPUBuffer) => ({ N: 2, W: at(W, 0, 16), Y: at(y, 0, 16), bias: bias && at(bias, 0, 8) });
    expect(() => matmulXWtGroups(gpu, { X: a, groups: [group(a), group(b)] }, { M: 2, K: 2 })).toThrow(/ranges of one buffer/);
    expect(() => matmulXWtGroups(gpu, { X: a, groups: [group(a, b), group(a)] }, { M: 2, K: 2 })).toThrow(/a bias or none/);
    for (const buffer of [a, b, y]) buffer.destroy();
  });
});

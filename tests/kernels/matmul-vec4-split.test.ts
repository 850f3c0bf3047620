import { afterEach, describe, expect, it } from 'vitest';
import { splitCount } from '../../src/kernels/matmul-vec4';
import { testGpu } from '../helpers/gpu';
import { productCase, type Shape } from '../helpers/matmul-vec4-cases';
import { checkOp } from '../helpers/op-test';

describe('matmul vec4 split-K for dW = dY^T X', () => {
  // r = 3 output rows (a LoRA dA), reductions over 70 and 1000 tokens; forced split counts, including
  // more than the depth has slices for, and the count chosen from the shape.
  const cases: [Shape, number | undefined][] = [
    [[70, 3, 67], 2],
    [[70, 3, 64], 7],
    [[1000, 3, 67], 3],
    [[1000, 3, 128], undefined],
    [[1000, 67, 3], 5],
    [[17, 3, 67], 4],
  ];
  let seen: string[] = [];
  afterEach(() => {
    seen = [];
  });
  for (const [shape, splitK] of cases) {
    it(`${shape.join('x')} in ${splitK ?? 'shape-chosen'} splits overwrites and accumulates`, async () => {
      const gpu = await testGpu();
      await checkOp(gpu, productCase('DyTX', shape, { splitK }, seen));
      await checkOp(gpu, productCase('DyTX', shape, { splitK, alpha: 0.5, beta: 1 }, seen));
      await checkOp(gpu, productCase('DyTX', shape, { splitK, alpha: -2, beta: 0.25 }, seen));
      expect(seen).toEqual(Array(3).fill(['matmul_vec4_backward_weight_split', 'matmul_vec4_split_sum']).flat());
    });
  }

  it('chooses splits from the shape: long reductions over few tiles only', () => {
    expect(splitCount(1, 3 * 128, 1000)).toBe(3);
    expect(splitCount(9, 16 * 576, 2048)).toBe(8);
    expect(splitCount(1, 3 * 67, 70)).toBe(1);
    expect(splitCount(300, 64 * 64 * 300, 100000)).toBe(1);
  });

  it('sums the splits in a fixed order: the same result bit for bit on every run', async () => {
    const gpu = await testGpu();
    const runs: Float32Array[] = [];
    for (let i = 0; i < 2; i++) runs.push((await checkOp(gpu, productCase('DyTX', [1000, 3, 67], { splitK: 6 }, seen))).c);
    expect(runs[1]).toEqual(runs[0]);
  });
});

/**
 * matmul with W in a GGUF block format, decoded on the GPU element by element: X W^T (with and
 * without bias) and dY W on random blocks against the float64 product of the blocks as the CPU
 * dequantizer (src/gguf/quants, checked against llama.cpp in tests/gguf) decodes them. Outputs
 * start as NaN. Tolerance: f32 accumulation, relative to the sum of |products| of each output.
 */
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/gguf/quants';
import { matmulDyW, matmulXWt } from '../../src/kernels/matmul';
import { asWords, BLOCK_FORMATS, BLOCK_LAYOUTS, type BlockFormat } from '../../src/model/weight-format';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type OpCase } from '../helpers/op-test';
import { randomBlocks } from '../helpers/random-blocks';
import { combineRef, matmulDyWRef, matmulXWtRef } from '../reference/matmul';

type Shape = [M: number, N: number, K: number];

/** The largest sum of |a| |w| over one output's products: the scale of its f32 rounding error. */
function magnitude(layout: 'XWt' | 'DyW', a: Float64Array, w: Float64Array, [M, N, K]: Shape): number {
  const abs = (v: Float64Array) => v.map(Math.abs);
  const out = layout === 'XWt' ? matmulXWtRef(abs(a), abs(w), M, N, K) : matmulDyWRef(abs(a), abs(w), M, N, K);
  return out.reduce((m, v) => Math.max(m, v), 0);
}

/** W [N, K] random blocks of `format`, bound from byte `rowOffset` rows into a buffer that holds `rowOffset` more rows first. */
function blockCase(
  layout: 'XWt' | 'DyW',
  format: BlockFormat,
  shape: Shape,
  o: { schedule: 'tiled' | 'direct'; bias?: boolean; rowOffset?: number },
): OpCase {
  const [M, N, K] = shape;
  const skip = o.rowOffset ?? 0;
  const { bytes, type } = randomBlocks(format, (N + skip) * K, 61 + N + K);
  const rowBytes = (K / BLOCK_LAYOUTS[format].blockSize) * BLOCK_LAYOUTS[format].blockBytes;
  const w64 = toF64(dequantize(type, bytes.subarray(skip * rowBytes), N * K));
  const a = randomArray(layout === 'XWt' ? M * K : M * N, 71 + M);
  const bias = o.bias ? randomArray(N, 73) : undefined;
  const product = layout === 'XWt' ? matmulXWtRef(toF64(a), w64, M, N, K) : matmulDyWRef(toF64(a), w64, M, N, K);
  const atol = 4e-6 * magnitude(layout, toF64(a), w64, shape);
  return {
    inputs: { a, w: asWords(bytes), ...(bias && { bias }) },
    outputs: { c: layout === 'XWt' ? M * N : M * K },
    run: (gpu, t) => {
      const W = skip === 0 ? t.w : { buffer: t.w as GPUBuffer, offset: skip * rowBytes, size: N * rowBytes };
      const opts = { schedule: o.schedule, format };
      if (layout === 'XWt') matmulXWt(gpu, { X: t.a, W, Y: t.c, bias: bias && t.bias }, { M, N, K }, opts);
      else matmulDyW(gpu, { dY: t.a, W, dX: t.c }, { M, N, K }, opts);
    },
    expected: { c: { values: combineRef(product, 1, 0, undefined, bias && toF64(bias)), atol, rtol: 1e-5 } },
  };
}

// N = 67 output rows (no multiple of the 64-wide tile or the 4-wide block), 7 and 70 tokens, one and
// two blocks per row for the 32-value formats, one and two super-blocks for the K-quants.
const shapes = (format: BlockFormat): Shape[] => {
  const bs = BLOCK_LAYOUTS[format].blockSize;
  return [
    [7, 67, bs === 32 ? 64 : 256],
    [70, 67, bs === 32 ? 32 : 512],
  ];
};

describe('matmul kernels with GGUF block-format weights (decoded on the GPU)', () => {
  for (const format of BLOCK_FORMATS) {
    for (const schedule of ['tiled', 'direct'] as const) {
      it(`${format} ${schedule}: X W^T, X W^T + bias and dY W match the float64 product of the dequantized blocks`, async () => {
        const gpu = await testGpu();
        for (const shape of shapes(format)) {
          await checkOp(gpu, blockCase('XWt', format, shape, { schedule }));
          await checkOp(gpu, blockCase('XWt', format, shape, { schedule, bias: true }));
          await checkOp(gpu, blockCase('DyW', format, shape, { schedule }));
        }
      });
    }
    // A vocabulary chunk starts some rows into its piece: 5 rows of one 32-value block are 90 bytes
    // of Q4_0 (not a multiple of 4), 170 of Q8_0; the wrapper binds from a block-aligned base.
    it(`${format}: W bound a few rows into its buffer`, async () => {
      const gpu = await testGpu();
      const K = BLOCK_LAYOUTS[format].blockSize;
      await checkOp(gpu, blockCase('XWt', format, [7, 67, K], { schedule: 'direct', rowOffset: 5 }));
      await checkOp(gpu, blockCase('DyW', format, [7, 67, K], { schedule: 'tiled', rowOffset: 5 }));
    });
  }

  // Q4_K blocks are 144 bytes: from byte 8 no aligned offset lies a whole number of blocks before W.
  it('refuses a block-format W that starts where no aligned binding can reach it in whole blocks, and rows that split blocks', async () => {
    const gpu = await testGpu();
    const buffer = gpu.createBuffer(4096, 'W');
    const Y = gpu.createBuffer(4096, 'Y');
    const X = gpu.createBuffer(4096, 'X');
    try {
      const W = { buffer, offset: 8, size: 144 * 2 };
      expect(() => matmulXWt(gpu, { X, W, Y }, { M: 1, N: 2, K: 256 }, { format: 'q4_k' })).toThrow(/no whole number of q4_k blocks/);
      expect(() => matmulXWt(gpu, { X, W: buffer, Y }, { M: 1, N: 2, K: 48 }, { format: 'q8_0' })).toThrow(/not whole q8_0 blocks/);
    } finally {
      for (const b of [buffer, Y, X]) b.destroy();
    }
  });
});

import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/gpu/context';
import { dequantize } from '../../src/gguf/quants';
import { crossEntropyChunkRows, crossEntropyForwardBackward, logitsForRows, type VocabPiece } from '../../src/kernels/cross-entropy';
import { asWords, BLOCK_FORMATS, BLOCK_LAYOUTS } from '../../src/model/weight-format';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type ExpectedOutput, type Tolerance } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { randomBlocks } from '../helpers/random-blocks';
import { crossEntropyRef, logitsRef } from '../reference/cross-entropy';
import { roundAllTo } from '../reference/weight-rounding';

const [M, C, V] = [7, 67, 53];
const E = randomArray(V * C, 1);
// Rows 1 and 4 ignored; targets at both piece edges and both vocabulary ends.
const targets = Int32Array.from([0, -100, 29, 30, -100, 52, 17]);
const IGNORED = [1, 4];
const count = targets.filter((t) => t >= 0).length;

/**
 * E whole, or split at vocabulary row `split` with the second piece in a 256-byte-aligned arena slice
 * (at offset 256 of its buffer), given out of order: the wrapper sorts by rowStart.
 */
function vocabulary(split?: number): {
  inputs: Record<string, Float32Array>;
  arenas: string[][];
  pieces: (t: Record<string, Binding>) => VocabPiece[];
} {
  if (split === undefined)
    return {
      inputs: { E0: E },
      arenas: [],
      pieces: (t: Record<string, Binding>): VocabPiece[] => [{ weight: t.E0, rowStart: 0, rows: V }],
    };
  return {
    inputs: { E0: E.subarray(0, split * C), E1: E.subarray(split * C) },
    arenas: [['E1']],
    pieces: (t: Record<string, Binding>): VocabPiece[] => [
      { weight: t.E1, rowStart: split, rows: V - split },
      { weight: t.E0, rowStart: 0, rows: split },
    ],
  };
}

interface Case {
  name: string;
  hidden: Float32Array;
  split?: number;
  chunk: number;
  withGrad: boolean;
  tol: { rowLoss: Tolerance; lse?: Tolerance; dHidden?: Tolerance };
  /** |mean loss - reference| bound. */
  meanWithin?: number;
}

const CASES: Case[] = [
  {
    name: '2 pieces and chunks of 16 (not dividing V)',
    hidden: randomArray(M * C, 2),
    split: 30,
    chunk: 16,
    withGrad: true,
    tol: { rowLoss: { atol: 2e-5, rtol: 1e-5 }, lse: { atol: 2e-5, rtol: 1e-5 }, dHidden: { atol: 1e-5, rtol: 1e-4 } },
    meanWithin: 1e-5,
  },
  {
    name: 'forward only leaves the loss the same',
    hidden: randomArray(M * C, 2),
    split: 30,
    chunk: 16,
    withGrad: false,
    tol: { rowLoss: { atol: 2e-5, rtol: 1e-5 } },
  },
  {
    name: 'one piece in one chunk',
    hidden: randomArray(M * C, 3),
    chunk: 64,
    withGrad: true,
    tol: { rowLoss: { atol: 2e-5, rtol: 1e-5 }, dHidden: { atol: 1e-5, rtol: 1e-4 } },
  },
  {
    // Logits of several hundred: exp() of them overflows f32.
    name: 'stays finite for logits far beyond exp range (online max subtraction)',
    hidden: randomArray(M * C, 4).map((v) => 60 * v),
    split: 7,
    chunk: 5,
    withGrad: true,
    tol: { rowLoss: { atol: 1e-3, rtol: 1e-5 }, dHidden: { atol: 1e-4, rtol: 1e-4 } },
  },
];

describe('chunked lm_head + cross-entropy kernels', () => {
  for (const c of CASES) {
    it(`matches the float64 loss${c.withGrad ? ' and dHidden' : ''}: ${c.name}`, async () => {
      const lossScale = 1 / count;
      const ref = crossEntropyRef(toF64(c.hidden), toF64(E), targets, M, C, V, lossScale);
      const vocab = vocabulary(c.split);
      const expected: Record<string, ExpectedOutput> = { rowLoss: { values: ref.rowLoss, ...c.tol.rowLoss } };
      if (c.tol.lse)
        expected.stats = { values: ref.lse, ...c.tol.lse, pick: (stats) => Array.from({ length: M }, (_, m) => stats[m * 4 + 3]) };
      if (c.tol.dHidden) expected.dHidden = { values: ref.dHidden, ...c.tol.dHidden };
      const out = await checkOp(await testGpu(), {
        inputs: { hidden: c.hidden, targets, ...vocab.inputs },
        // dHidden is overwritten, never read.
        outputs: { rowLoss: M, stats: M * 4, scratch: M * c.chunk, ...(c.withGrad && { dHidden: M * C }) },
        arenas: vocab.arenas,
        run: (gpu, t) =>
          crossEntropyForwardBackward(
            gpu,
            {
              hidden: t.hidden,
              targets: t.targets,
              rowLoss: t.rowLoss,
              dHidden: c.withGrad ? t.dHidden : undefined,
              scratch: t.scratch,
              stats: t.stats,
              lmHead: vocab.pieces(t),
            },
            { M, C, V, chunk: c.chunk },
            { lossScale },
          ),
        expected,
      });
      expect(count).toBe(ref.count);
      if (c.meanWithin !== undefined)
        expect(Math.abs(out.rowLoss.reduce((a, v) => a + v, 0) / count - ref.meanLoss)).toBeLessThan(c.meanWithin);
      // Ignored rows get exactly zero loss and gradient.
      for (const m of IGNORED) {
        expect(out.rowLoss[m]).toBe(0);
        if (c.withGrad) expect(Array.from(out.dHidden.subarray(m * C, (m + 1) * C)).every((v) => v === 0)).toBe(true);
      }
    });
  }

  it('logitsForRows writes plain logits of a few rows', async () => {
    const hidden = randomArray(M * C, 5);
    const [rowStart, rows] = [5, 2];
    const vocab = vocabulary(30);
    await checkOp(await testGpu(), {
      inputs: { hidden, ...vocab.inputs },
      outputs: { out: rows * V },
      arenas: vocab.arenas,
      run: (gpu, t) => logitsForRows(gpu, { hidden: t.hidden, lmHead: vocab.pieces(t), out: t.out }, { rowStart, rows, C, V }),
      expected: {
        out: { values: logitsRef(toF64(hidden), toF64(E), M, C, V).subarray(rowStart * V, (rowStart + rows) * V), atol: 2e-5, rtol: 1e-4 },
      },
    });
  });

  it('crossEntropyChunkRows fits the scratch budget', () => {
    expect(crossEntropyChunkRows(7, 7 * 4 * 53)).toBe(53);
    expect(crossEntropyChunkRows(4096, 64 << 20)).toBe(4096);
    expect(crossEntropyChunkRows(1000, 1000 * 4 * 200)).toBe(192);
    expect(() => crossEntropyChunkRows(1000, 3999)).toThrow();
  });

  it('rejects pieces that do not tile the vocabulary', async () => {
    const gpu = await testGpu();
    const t = {
      hidden: gpu.createBuffer(M * C * 4, 'hidden'),
      targets: gpu.upload(targets, 'targets'),
      rowLoss: gpu.createBuffer(M * 4, 'rowLoss'),
      scratch: gpu.createBuffer(M * 16 * 4, 'scratch'),
      stats: gpu.createBuffer(M * 16, 'stats'),
      lmHead: [{ weight: gpu.upload(E.subarray(30 * C), 'E[30:V]'), rowStart: 30, rows: V - 30 }],
    };
    expect(() => crossEntropyForwardBackward(gpu, t, { M, C, V, chunk: 16 }, { lossScale: 1 })).toThrow(/missing/);
  });
});

describe('chunked lm_head + cross-entropy with a 16-bit lm_head', () => {
  for (const format of ['bf16', 'f16'] as const) {
    // Chunks of 5 rows of 67 values start 2 bytes into a u32 word every other chunk; the second piece
    // sits 256 bytes into an arena buffer.
    it(`${format}: loss and dHidden match the float64 reference on the rounded lm_head, 2 pieces, chunks of 5`, async () => {
      const [split, chunk] = [30, 5];
      const hidden = randomArray(M * C, 7);
      const lossScale = 1 / count;
      const ref = crossEntropyRef(toF64(hidden), roundAllTo(format, E), targets, M, C, V, lossScale);
      await checkOp(await testGpu(), {
        inputs: { hidden, targets, E0: packWeights(E.subarray(0, split * C), format), E1: packWeights(E.subarray(split * C), format) },
        outputs: { rowLoss: M, stats: M * 4, scratch: M * chunk, dHidden: M * C },
        arenas: [['E1']],
        run: (gpu, t) =>
          crossEntropyForwardBackward(
            gpu,
            {
              hidden: t.hidden,
              targets: t.targets,
              rowLoss: t.rowLoss,
              dHidden: t.dHidden,
              scratch: t.scratch,
              stats: t.stats,
              lmHead: [
                { weight: t.E1, rowStart: split, rows: V - split },
                { weight: t.E0, rowStart: 0, rows: split },
              ],
            },
            { M, C, V, chunk },
            { lossScale, format },
          ),
        expected: { rowLoss: { values: ref.rowLoss, atol: 2e-5, rtol: 1e-5 }, dHidden: { values: ref.dHidden, atol: 1e-5, rtol: 1e-4 } },
      });
    });

    it(`${format}: logitsForRows reads the 16-bit pieces`, async () => {
      const hidden = randomArray(M * C, 8);
      const [rowStart, rows, split] = [4, 3, 29];
      const logits = logitsRef(toF64(hidden), roundAllTo(format, E), M, C, V);
      await checkOp(await testGpu(), {
        inputs: { hidden, E0: packWeights(E.subarray(0, split * C), format), E1: packWeights(E.subarray(split * C), format) },
        outputs: { out: rows * V },
        arenas: [['E1']],
        run: (gpu, t) =>
          logitsForRows(
            gpu,
            {
              hidden: t.hidden,
              lmHead: [
                { weight: t.E0, rowStart: 0, rows: split },
                { weight: t.E1, rowStart: split, rows: V - split },
              ],
              out: t.out,
            },
            { rowStart, rows, C, V },
            { format },
          ),
        expected: { out: { values: logits.subarray(rowStart * V, (rowStart + rows) * V), atol: 2e-5, rtol: 1e-4 } },
      });
    });
  }
});

describe('chunked lm_head + cross-entropy with a GGUF block-format lm_head', () => {
  for (const format of BLOCK_FORMATS) {
    // Rows of two blocks; chunks of 5 rows start 5 rows of blocks into their piece (170 bytes of Q4_0
    // rows: not a multiple of 4), so the matmul binds each chunk from a block-aligned base.
    it(`${format}: loss and dHidden match the float64 reference on the dequantized lm_head, 2 pieces, chunks of 5`, async () => {
      const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
      const width = 2 * blockSize;
      const rowBytes = 2 * blockBytes;
      const [split, chunk] = [30, 5];
      // Super-scales that keep weights within about ±1 in every format (Q6_K's int8 sub-scales times
      // levels up to 32 reach 4064 d), so the logits stay of the size the f32 tolerances are set for.
      const scale = { q8_0: 5e-3, q4_0: 5e-3, q5_0: 5e-3, q5_1: 5e-3, q4_k: 1e-3, q5_k: 5e-4, q6_k: 2.5e-4 }[format];
      const { bytes, type } = randomBlocks(format, V * width, 9, scale);
      const hidden = randomArray(M * width, 7);
      const lossScale = 1 / count;
      const ref = crossEntropyRef(toF64(hidden), toF64(dequantize(type, bytes, V * width)), targets, M, width, V, lossScale);
      await checkOp(await testGpu(), {
        inputs: { hidden, targets, E0: asWords(bytes.slice(0, split * rowBytes)), E1: asWords(bytes.slice(split * rowBytes)) },
        outputs: { rowLoss: M, stats: M * 4, scratch: M * chunk, dHidden: M * width },
        arenas: [['E1']],
        run: (gpu, t) =>
          crossEntropyForwardBackward(
            gpu,
            {
              hidden: t.hidden,
              targets: t.targets,
              rowLoss: t.rowLoss,
              dHidden: t.dHidden,
              scratch: t.scratch,
              stats: t.stats,
              lmHead: [
                { weight: t.E1, rowStart: split, rows: V - split },
                { weight: t.E0, rowStart: 0, rows: split },
              ],
            },
            { M, C: width, V, chunk },
            { lossScale, format },
          ),
        expected: { rowLoss: { values: ref.rowLoss, atol: 2e-5, rtol: 1e-5 }, dHidden: { values: ref.dHidden, atol: 1e-5, rtol: 1e-4 } },
      });
    });
  }
});

import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context';
import {
  crossEntropyChunkRows,
  crossEntropyForwardBackward,
  logitsForRows,
  type VocabPiece,
} from '../../src/kernels/cross-entropy';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { crossEntropyRef, logitsRef } from '../reference/cross-entropy';

const [M, C, V] = [7, 67, 53];
const E = randomArray(V * C, 1);
// Rows 1 and 4 ignored; targets at both piece edges and both vocabulary ends.
const targets = Int32Array.from([0, -100, 29, 30, -100, 52, 17]);

/** E split at vocabulary row 30, the second piece at a 256-byte-aligned offset inside a larger buffer. */
function vocabPieces(gpu: Gpu, split = 30): VocabPiece[] {
  const first = gpu.upload(E.subarray(0, split * C), 'E[0:split]');
  const second = gpu.createBuffer(256 + (V - split) * C * 4, 'E[split:V]');
  const tail = { buffer: second, offset: 256, size: (V - split) * C * 4 };
  gpu.write(tail, E.subarray(split * C));
  // Given out of order: the wrapper sorts by rowStart.
  return [
    { weight: tail, rowStart: split, rows: V - split },
    { weight: first, rowStart: 0, rows: split },
  ];
}

async function run(gpu: Gpu, hidden: Float32Array, pieces: VocabPiece[], chunk: number, withGrad: boolean) {
  const count = targets.filter((t) => t >= 0).length;
  const lossScale = 1 / count;
  const b = {
    hidden: gpu.upload(hidden, 'hidden'),
    targets: gpu.upload(targets, 'targets'),
    rowLoss: gpu.upload(new Float32Array(M).fill(NaN), 'rowLoss'),
    // Overwritten, never read.
    dHidden: withGrad ? gpu.upload(new Float32Array(M * C).fill(NaN), 'dHidden') : undefined,
    scratch: gpu.createBuffer(M * chunk * 4, 'scratch'),
    stats: gpu.upload(new Float32Array(M * 4).fill(NaN), 'stats'),
  };
  crossEntropyForwardBackward(gpu, b, pieces, M, C, V, chunk, lossScale);
  const ref = crossEntropyRef(toF64(hidden), toF64(E), targets, M, C, V, lossScale);
  const rowLoss = await gpu.readF32(b.rowLoss, M);
  const stats = await gpu.readF32(b.stats, M * 4);
  return { ref, rowLoss, stats, dHidden: b.dHidden && (await gpu.readF32(b.dHidden, M * C)), count };
}

describe('chunked lm_head + cross-entropy kernels', () => {
  it('matches the float64 loss and dHidden with 2 pieces and chunks of 16 (not dividing V)', async () => {
    const gpu = await testGpu();
    const { ref, rowLoss, stats, dHidden, count } = await run(gpu, randomArray(M * C, 2), vocabPieces(gpu), 16, true);
    expectClose(rowLoss, ref.rowLoss, { atol: 2e-5, rtol: 1e-5, label: 'rowLoss' });
    expectClose(
      Array.from({ length: M }, (_, m) => stats[m * 4 + 3]),
      ref.lse,
      { atol: 2e-5, rtol: 1e-5, label: 'lse' },
    );
    expect(count).toBe(ref.count);
    const mean = rowLoss.reduce((a, v) => a + v, 0) / count;
    expect(Math.abs(mean - ref.meanLoss)).toBeLessThan(1e-5);
    expectClose(dHidden!, ref.dHidden, { atol: 1e-5, rtol: 1e-4, label: 'dHidden' });
    // Ignored rows get exactly zero loss and gradient.
    for (const m of [1, 4]) {
      expect(rowLoss[m]).toBe(0);
      expect(Array.from(dHidden!.subarray(m * C, (m + 1) * C)).every((v) => v === 0)).toBe(true);
    }
  });

  it('forward only leaves the loss the same', async () => {
    const gpu = await testGpu();
    const { ref, rowLoss, dHidden } = await run(gpu, randomArray(M * C, 2), vocabPieces(gpu), 16, false);
    expect(dHidden).toBeUndefined();
    expectClose(rowLoss, ref.rowLoss, { atol: 2e-5, rtol: 1e-5, label: 'rowLoss' });
  });

  it('handles one piece in one chunk (the logits are reused by the backward pass)', async () => {
    const gpu = await testGpu();
    const pieces = [{ weight: gpu.upload(E, 'E'), rowStart: 0, rows: V }];
    const { ref, rowLoss, dHidden } = await run(gpu, randomArray(M * C, 3), pieces, 64, true);
    expectClose(rowLoss, ref.rowLoss, { atol: 2e-5, rtol: 1e-5, label: 'rowLoss' });
    expectClose(dHidden!, ref.dHidden, { atol: 1e-5, rtol: 1e-4, label: 'dHidden' });
  });

  it('stays finite for logits far beyond exp range (online max subtraction)', async () => {
    const gpu = await testGpu();
    // Logits of several hundred: exp() of them overflows f32.
    const hidden = randomArray(M * C, 4).map((v) => 60 * v);
    const { ref, rowLoss, dHidden } = await run(gpu, hidden, vocabPieces(gpu, 7), 5, true);
    expectClose(rowLoss, ref.rowLoss, { atol: 1e-3, rtol: 1e-5, label: 'rowLoss' });
    expectClose(dHidden!, ref.dHidden, { atol: 1e-4, rtol: 1e-4, label: 'dHidden' });
  });

  it('logitsForRows writes plain logits of a few rows', async () => {
    const gpu = await testGpu();
    const hidden = randomArray(M * C, 5);
    const [rowStart, rows] = [5, 2];
    const out = gpu.upload(new Float32Array(rows * V).fill(NaN), 'out');
    logitsForRows(gpu, gpu.upload(hidden, 'hidden'), vocabPieces(gpu), out, rowStart, rows, C, V);
    const ref = logitsRef(toF64(hidden), toF64(E), M, C, V).subarray(rowStart * V, (rowStart + rows) * V);
    expectClose(await gpu.readF32(out, rows * V), ref, { atol: 2e-5, label: 'logits' });
  });

  it('crossEntropyChunkRows fits the scratch budget', () => {
    expect(crossEntropyChunkRows(7, 7 * 4 * 53)).toBe(53);
    expect(crossEntropyChunkRows(4096, 64 << 20)).toBe(4096);
    expect(crossEntropyChunkRows(1000, 1000 * 4 * 200)).toBe(192);
    expect(() => crossEntropyChunkRows(1000, 3999)).toThrow();
  });

  it('rejects pieces that do not tile the vocabulary', async () => {
    const gpu = await testGpu();
    const pieces = vocabPieces(gpu).slice(0, 1);
    const b = {
      hidden: gpu.createBuffer(M * C * 4, 'hidden'),
      targets: gpu.upload(targets, 'targets'),
      rowLoss: gpu.createBuffer(M * 4, 'rowLoss'),
      scratch: gpu.createBuffer(M * 16 * 4, 'scratch'),
      stats: gpu.createBuffer(M * 16, 'stats'),
    };
    expect(() => crossEntropyForwardBackward(gpu, b, pieces, M, C, V, 16, 1)).toThrow(/missing/);
  });
});

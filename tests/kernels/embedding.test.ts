import { describe, expect, it } from 'vitest';
import { embeddingForward } from '../../src/kernels/embedding';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { embeddingForwardRef } from '../reference/embedding';

describe('embedding kernel', () => {
  // 2 x 5 tokens, 37 vocabulary rows of 67 channels; the first and last rows are used on purpose.
  const V = 37;
  const C = 67;
  const ids = Uint32Array.from([0, 5, 36, 19, 20, 20, 1, 35, 19, 7]);
  const M = ids.length;
  const table = randomArray(V * C, 3);
  const expected = embeddingForwardRef(ids, toF64(table), C);
  const SENTINEL = 12345;

  it('looks rows up in the whole table', async () => {
    const gpu = await testGpu();
    const out = gpu.upload(new Float32Array(M * C), 'out');
    embeddingForward(gpu, gpu.upload(ids, 'ids'), gpu.upload(table, 'table'), out, M, C, 0, V);
    expectClose(await gpu.readF32(out, M * C), expected, { atol: 0, rtol: 0 });
  });

  it('gives the same result from a table split in two pieces, each piece writing only its rows', async () => {
    const gpu = await testGpu();
    const split = 20;
    const idsBuffer = gpu.upload(ids, 'ids');
    const first = gpu.upload(table.subarray(0, split * C), 'table rows 0..19');
    const second = gpu.upload(table.subarray(split * C), 'table rows 20..36');
    const out = gpu.upload(new Float32Array(M * C).fill(SENTINEL), 'out');

    embeddingForward(gpu, idsBuffer, first, out, M, C, 0, split);
    const afterFirst = await gpu.readF32(out, M * C);
    for (let m = 0; m < M; m++) {
      const row = afterFirst.subarray(m * C, (m + 1) * C);
      if (ids[m] < split) expectClose(row, expected.subarray(m * C, (m + 1) * C), { atol: 0, rtol: 0 });
      else expect(row.every((v) => v === SENTINEL), `row ${m} (id ${ids[m]}) untouched`).toBe(true);
    }

    embeddingForward(gpu, idsBuffer, second, out, M, C, split, V - split);
    expectClose(await gpu.readF32(out, M * C), expected, { atol: 0, rtol: 0 });
  });
});

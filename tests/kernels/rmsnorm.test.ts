import { describe, expect, it } from 'vitest';
import { rmsnormBackwardAccumulate, rmsnormForward } from '../../src/kernels/rmsnorm';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { rmsnormBackwardRef, rmsnormForwardRef } from '../reference/rmsnorm';

const EPS = 1e-5;

// Rows of up to ROW_MAX_C columns take the one-invocation-per-row schedule: 7 x 67, 70 x 67 (more
// rows than one 64-wide workgroup), 3 x 3. 5 x 2100 takes the workgroup-per-row schedule, each
// invocation striding over 9 columns with a ragged end.
const SHAPES = [
  { M: 7, C: 67 },
  { M: 70, C: 67 },
  { M: 5, C: 2100 },
  { M: 3, C: 3 },
];

function inputs(M: number, C: number) {
  const x = randomArray(M * C, 11);
  // A row whose mean square is far below eps, so eps inside the root matters.
  for (let c = 0; c < C; c++) x[c] *= 1e-3;
  return { x, w: randomArray(C, 12, 0.5, 1.5), dy: randomArray(M * C, 13), dx0: randomArray(M * C, 14) };
}

describe('rmsnorm kernels', () => {
  for (const { M, C } of SHAPES) {
    it(`forward matches the float64 reference, M=${M} C=${C}`, async () => {
      const gpu = await testGpu();
      const { x, w } = inputs(M, C);
      const y = gpu.createBuffer(M * C * 4, 'y');
      const rstd = gpu.createBuffer(M * 4, 'rstd');
      rmsnormForward(gpu, gpu.upload(x, 'x'), gpu.upload(w, 'w'), y, rstd, M, C, EPS);
      const ref = rmsnormForwardRef(toF64(x), toF64(w), M, C, EPS);
      expectClose(await gpu.readF32(y, M * C), ref.y, { atol: 1e-6, rtol: 1e-5, label: 'y' });
      expectClose(await gpu.readF32(rstd, M), ref.rstd, { atol: 0, rtol: 1e-5, label: 'rstd' });
    });

    it(`backward adds the input gradient into dx, M=${M} C=${C}`, async () => {
      const gpu = await testGpu();
      const { x, w, dy, dx0 } = inputs(M, C);
      const xBuffer = gpu.upload(x, 'x');
      const wBuffer = gpu.upload(w, 'w');
      const rstd = gpu.createBuffer(M * 4, 'rstd');
      const dx = gpu.upload(dx0, 'dx');
      rmsnormForward(gpu, xBuffer, wBuffer, gpu.createBuffer(M * C * 4, 'y'), rstd, M, C, EPS);
      rmsnormBackwardAccumulate(gpu, gpu.upload(dy, 'dy'), xBuffer, wBuffer, rstd, dx, M, C);
      const grad = rmsnormBackwardRef(toF64(dy), toF64(x), toF64(w), M, C, EPS);
      const expected = grad.map((g, i) => g + dx0[i]);
      expectClose(await gpu.readF32(dx, M * C), expected, { atol: 1e-5, rtol: 1e-5, label: 'dx' });
    });
  }

  it('the backward reference matches central differences of the forward reference', () => {
    const { M, C } = SHAPES[0];
    const { x, w, dy } = inputs(M, C);
    const x64 = toF64(x);
    const w64 = toF64(w);
    const dy64 = toF64(dy);
    const loss = (v: Float64Array) => rmsnormForwardRef(v, w64, M, C, EPS).y.reduce((s, y, i) => s + y * dy64[i], 0);
    const analytic = rmsnormBackwardRef(dy64, x64, w64, M, C, EPS);
    const h = 1e-6;
    let worst = 0;
    for (let i = 0; i < x64.length; i++) {
      const plus = Float64Array.from(x64);
      const minus = Float64Array.from(x64);
      plus[i] += h;
      minus[i] -= h;
      const numeric = (loss(plus) - loss(minus)) / (2 * h);
      worst = Math.max(worst, Math.abs(numeric - analytic[i]) / (1 + Math.abs(analytic[i])));
    }
    expect(worst).toBeLessThan(1e-6);
  });
});

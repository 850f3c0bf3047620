import { describe, it } from 'vitest';
import { type RmsnormOptions, residualRmsnormForward, rmsnormBackwardAccumulate, rmsnormForward } from '../../src/kernels/rmsnorm';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, expectReferenceGradient } from '../helpers/op-test';
import { residualRmsnormForwardRef, rmsnormBackwardRef, rmsnormForwardRef } from '../reference/rmsnorm';

const EPS = 1e-5;

// 7 x 67 and 70 x 67 (more rows than one 64-wide workgroup of the rows schedule; 67 columns: a
// ragged last stride of the 64-wide workgroup schedule), 5 x 2100 (a wide row: 256 invocations
// striding over 9 columns each, ragged), 3 x 3 (fewer columns than invocations), 9 x 576 (SmolLM2's width).
const CASES = [
  { M: 7, C: 67, checkReference: true },
  { M: 70, C: 67 },
  { M: 5, C: 2100 },
  { M: 3, C: 3 },
  { M: 9, C: 576 },
];

/** Every schedule on every device: one invocation per row (CPU adapters), one workgroup per row with either reduction (GPUs). */
const SCHEDULES: { name: string; options: RmsnormOptions }[] = [
  { name: 'rows', options: { schedule: 'rows' } },
  { name: 'workgroup, subgroup sums', options: { schedule: 'workgroup', subgroups: true } },
  { name: 'workgroup, tree sums', options: { schedule: 'workgroup', subgroups: false } },
];

function inputs(M: number, C: number) {
  const x = randomArray(M * C, 11);
  // A row whose mean square is far below eps, so eps inside the root matters.
  for (let c = 0; c < C; c++) x[c] *= 1e-3;
  return {
    x,
    w: randomArray(C, 12, 0.5, 1.5),
    dy: randomArray(M * C, 13),
    dx0: randomArray(M * C, 14),
    branch: randomArray(M * C, 15),
  };
}

describe('rmsnorm kernels', () => {
  for (const { M, C, checkReference = false } of CASES) {
    const { x, w, dy, dx0, branch } = inputs(M, C);
    const ref = rmsnormForwardRef(toF64(x), toF64(w), M, C, EPS);

    describe(`M=${M} C=${C}`, () => {
      for (const { name, options } of SCHEDULES) {
        it(`${name}: forward matches the float64 reference`, async () => {
          await checkOp(await testGpu(), {
            inputs: { x, w },
            outputs: { y: M * C, rstd: M },
            run: (gpu, t) => rmsnormForward(gpu, { x: t.x, weight: t.w, y: t.y, rstd: t.rstd }, { M, C }, { ...options, eps: EPS }),
            expected: { y: { values: ref.y, atol: 1e-6, rtol: 1e-5 }, rstd: { values: ref.rstd, atol: 0, rtol: 1e-5 } },
          });
        });

        it(`${name}: backward adds the input gradient into dx`, async () => {
          const grad = rmsnormBackwardRef(toF64(dy), toF64(x), toF64(w), M, C, EPS);
          await checkOp(await testGpu(), {
            inputs: { x, w, dy },
            outputs: { y: M * C, rstd: M, dx: dx0 },
            run: (gpu, t) => {
              rmsnormForward(gpu, { x: t.x, weight: t.w, y: t.y, rstd: t.rstd }, { M, C }, { ...options, eps: EPS });
              rmsnormBackwardAccumulate(gpu, { dy: t.dy, x: t.x, weight: t.w, rstd: t.rstd, dx: t.dx }, { M, C }, options);
            },
            expected: { dx: { values: grad.map((g, i) => g + dx0[i]), atol: 1e-5, rtol: 1e-5 } },
          });
        });

        it(`${name}: the fused residual and norm write h = x + branch, its norm and rstd`, async () => {
          const fused = residualRmsnormForwardRef(toF64(x), toF64(branch), toF64(w), M, C, EPS);
          await checkOp(await testGpu(), {
            inputs: { x, branch, w },
            outputs: { h: M * C, y: M * C, rstd: M },
            run: (gpu, t) =>
              residualRmsnormForward(
                gpu,
                { x: t.x, branch: t.branch, h: t.h, weight: t.w, y: t.y, rstd: t.rstd },
                { M, C },
                { ...options, eps: EPS },
              ),
            expected: {
              h: { values: fused.h, atol: 1e-6, rtol: 1e-6 },
              y: { values: fused.y, atol: 1e-6, rtol: 1e-5 },
              rstd: { values: fused.rstd, atol: 0, rtol: 1e-5 },
            },
          });
        });
      }

      if (checkReference) {
        it('the backward reference matches central differences of the forward reference', () => {
          const x64 = toF64(x);
          const w64 = toF64(w);
          const dy64 = toF64(dy);
          expectReferenceGradient({
            loss: () => rmsnormForwardRef(x64, w64, M, C, EPS).y.reduce((s, y, i) => s + y * dy64[i], 0),
            wrt: { x: { x: x64, analytic: rmsnormBackwardRef(dy64, x64, w64, M, C, EPS), atol: 1e-6, rtol: 1e-6 } },
            h: 1e-6,
            relativeTo: 'analytic',
          });
        });
      }
    });
  }
});

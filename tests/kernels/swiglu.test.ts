import { describe, it } from 'vitest';
import type { ElementwiseOptions } from '../../src/kernels/elementwise';
import { swigluBackwardInplace, swigluForward } from '../../src/kernels/swiglu';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, expectReferenceGradient } from '../helpers/op-test';
import { swigluBackwardRef, swigluForwardRef } from '../reference/swiglu';

const CASES = [
  // 7 tokens x 67 channels: not a multiple of the 256-wide workgroup, n % 4 = 1 (a scalar tail);
  // saturated gates where a naive exp(-g) overflows or 1 - sigmoid cancels.
  { name: '7 x 67 elements, saturated gates', n: 7 * 67, saturated: [-100, 100, -1e4, 1e4, -30, 30, 0] },
  // A multiple of 4 (the vec4 pass alone) past one workgroup of vec4s.
  { name: '70 x 64 elements', n: 70 * 64, saturated: [-100, 100, -1e4, 1e4, -30, 30, 0, 5] },
  // n % 4 = 3: the largest scalar tail after the vec4 pass.
  { name: '3 x 193 elements', n: 3 * 193, saturated: [-100, 100, 0] },
];

const SCHEDULES: NonNullable<ElementwiseOptions['schedule']>[] = ['vec4', 'scalar'];

function inputs(n: number, saturated: number[]) {
  const gate = randomArray(n, 31, -6, 6);
  gate.set(saturated, 0);
  // The last element too: with n % 4 != 0 it is the scalar pass's.
  gate[n - 1] = -100;
  return { gate, up: randomArray(n, 32), dout: randomArray(n, 33) };
}

describe('swiglu kernels', () => {
  for (const { name, n, saturated } of CASES) {
    const { gate, up, dout } = inputs(n, saturated);
    const tol = { atol: 1e-6, rtol: 1e-5 };

    it.each(SCHEDULES)(`%s: forward matches the float64 reference: ${name}`, async (schedule) => {
      await checkOp(await testGpu(), {
        inputs: { gate, up },
        outputs: { out: n },
        run: (gpu, t) => swigluForward(gpu, { gate: t.gate, up: t.up, out: t.out }, { n }, { schedule }),
        expected: { out: { values: swigluForwardRef(toF64(gate), toF64(up)), ...tol } },
      });
    });

    it.each(SCHEDULES)(`%s: the in-place backward leaves the float64 reference gradients in gate and up: ${name}`, async (schedule) => {
      const ref = swigluBackwardRef(toF64(dout), toF64(gate), toF64(up));
      await checkOp(await testGpu(), {
        inputs: { dout },
        // Starting contents: gate and up are read, then overwritten with d gate and d up.
        outputs: { gate: gate.slice(), up: up.slice() },
        // Slices of one buffer, as sub-tensors are bound: both writable, so they may share it.
        arenas: [['gate', 'up']],
        run: (gpu, t) => swigluBackwardInplace(gpu, { dout: t.dout, gate: t.gate, up: t.up }, { n }, { schedule }),
        expected: { gate: { values: ref.dgate, ...tol }, up: { values: ref.dup, ...tol } },
      });
    });

    it(`the backward reference matches central differences of the forward reference: ${name}`, () => {
      const g = toF64(gate);
      const u = toF64(up);
      const d = toF64(dout);
      const ref = swigluBackwardRef(d, g, u);
      // Elementwise: element i's term alone, so the other terms' rounding stays out of the difference.
      const term = (i: number) => d[i] * swigluForwardRef(Float64Array.of(g[i]), Float64Array.of(u[i]))[0];
      expectReferenceGradient({
        loss: term,
        wrt: { gate: { x: g, analytic: ref.dgate, atol: 1e-6, rtol: 0 }, up: { x: u, analytic: ref.dup, atol: 1e-6, rtol: 1e-6 } },
        h: 1e-6,
        relativeTo: 'analytic',
      });
    });
  }
});

import { describe, it } from 'vitest';
import type { ElementwiseOptions } from '../../src/kernels/elementwise';
import { residualForward } from '../../src/kernels/residual';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp } from '../helpers/op-test';
import { residualForwardRef } from '../reference/residual';

const CASES = [
  // 7 tokens x 67 channels: not a multiple of the 256-wide workgroup, and n % 4 = 1 (a scalar tail).
  { name: '7 x 67 elements', n: 7 * 67 },
  // A multiple of 4 (the vec4 pass alone), past one workgroup of vec4s.
  { name: '70 x 64 elements', n: 70 * 64 },
  // Fewer than 4 elements: the scalar pass alone.
  { name: '3 elements', n: 3 },
];

const SCHEDULES: NonNullable<ElementwiseOptions['schedule']>[] = ['vec4', 'scalar'];

describe('residual kernel', () => {
  for (const { name, n } of CASES) {
    it.each(SCHEDULES)(`%s: forward adds the branch to the stream: ${name}`, async (schedule) => {
      const a = randomArray(n, 1);
      const b = randomArray(n, 2);
      await checkOp(await testGpu(), {
        inputs: { a, b },
        outputs: { y: n },
        // Slices of shared buffers, as the engine binds them: their sizes are not multiples of 16 bytes.
        arenas: [['a', 'b'], ['y']],
        run: (gpu, t) => residualForward(gpu, { a: t.a, b: t.b, y: t.y }, { n }, { schedule }),
        expected: { y: { values: residualForwardRef(toF64(a), toF64(b)), atol: 1e-6, rtol: 1e-6 } },
      });
    });
  }
});

import { describe, it } from 'vitest';
import { residualForward } from '../../src/kernels/residual';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp } from '../helpers/op-test';
import { residualForwardRef } from '../reference/residual';

const CASES = [
  // 7 tokens x 67 channels: not a multiple of the 256-wide workgroup.
  { name: '7 x 67 elements', n: 7 * 67 },
];

describe('residual kernel', () => {
  for (const { name, n } of CASES) {
    it(`forward adds the branch to the stream: ${name}`, async () => {
      const a = randomArray(n, 1);
      const b = randomArray(n, 2);
      await checkOp(await testGpu(), {
        inputs: { a, b },
        outputs: { y: n },
        run: (gpu, t) => residualForward(gpu, { a: t.a, b: t.b, y: t.y }, { n }),
        expected: { y: { values: residualForwardRef(toF64(a), toF64(b)), atol: 1e-6, rtol: 1e-6 } },
      });
    });
  }
});

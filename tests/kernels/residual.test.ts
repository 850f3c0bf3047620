import { describe, it } from 'vitest';
import { residualForward } from '../../src/kernels/residual';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { residualForwardRef } from '../reference/residual';

describe('residual kernels', () => {
  // 7 tokens x 67 channels: not a multiple of the 256-wide workgroup.
  const n = 7 * 67;
  const a = randomArray(n, 1);
  const b = randomArray(n, 2);

  it('forward adds the branch to the stream', async () => {
    const gpu = await testGpu();
    const y = gpu.createBuffer(n * 4, 'y');
    residualForward(gpu, gpu.upload(a, 'a'), gpu.upload(b, 'b'), y, n);
    expectClose(await gpu.readF32(y, n), residualForwardRef(toF64(a), toF64(b)), { atol: 1e-6, rtol: 1e-6 });
  });
});

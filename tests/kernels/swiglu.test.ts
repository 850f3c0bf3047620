import { describe, expect, it } from 'vitest';
import { swigluBackward, swigluForward } from '../../src/kernels/swiglu';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { swigluBackwardRef, swigluForwardRef } from '../reference/swiglu';

describe('swiglu kernels', () => {
  // 7 tokens x 67 channels: not a multiple of the 256-wide workgroup.
  const n = 7 * 67;
  const gate = randomArray(n, 31, -6, 6);
  // Saturated gates, where a naive exp(-g) overflows or 1 - sigmoid cancels.
  gate.set([-100, 100, -1e4, 1e4, -30, 30, 0], 0);
  const up = randomArray(n, 32);
  const dout = randomArray(n, 33);

  it('forward matches the float64 reference', async () => {
    const gpu = await testGpu();
    const out = gpu.createBuffer(n * 4, 'out');
    swigluForward(gpu, gpu.upload(gate, 'gate'), gpu.upload(up, 'up'), out, n);
    expectClose(await gpu.readF32(out, n), swigluForwardRef(toF64(gate), toF64(up)), { atol: 1e-6, rtol: 1e-5 });
  });

  it('backward overwrites dgate and dup with the float64 reference gradients', async () => {
    const gpu = await testGpu();
    const dgate = gpu.upload(randomArray(n, 34), 'dgate');
    const dup = gpu.upload(randomArray(n, 35), 'dup');
    swigluBackward(gpu, gpu.upload(dout, 'dout'), gpu.upload(gate, 'gate'), gpu.upload(up, 'up'), dgate, dup, n);
    const ref = swigluBackwardRef(toF64(dout), toF64(gate), toF64(up));
    expectClose(await gpu.readF32(dgate, n), ref.dgate, { atol: 1e-6, rtol: 1e-5, label: 'dgate' });
    expectClose(await gpu.readF32(dup, n), ref.dup, { atol: 1e-6, rtol: 1e-5, label: 'dup' });
  });

  it('the backward reference matches central differences of the forward reference', () => {
    const g = toF64(gate);
    const u = toF64(up);
    const d = toF64(dout);
    const ref = swigluBackwardRef(d, g, u);
    const h = 1e-6;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const f = (gi: number, ui: number) => d[i] * swigluForwardRef(Float64Array.of(gi), Float64Array.of(ui))[0];
      const numericGate = (f(g[i] + h, u[i]) - f(g[i] - h, u[i])) / (2 * h);
      const numericUp = (f(g[i], u[i] + h) - f(g[i], u[i] - h)) / (2 * h);
      worst = Math.max(worst, Math.abs(numericGate - ref.dgate[i]), Math.abs(numericUp - ref.dup[i]) / (1 + Math.abs(ref.dup[i])));
    }
    expect(worst).toBeLessThan(1e-6);
  });
});

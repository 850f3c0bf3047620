import { describe, expect, it } from 'vitest';
import { gradNormClipFactor, gradNormScratchFloats } from '../../src/kernels/grad-norm';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { gradNormClipRef } from '../reference/grad-norm';

async function normAndCoef(g: Float32Array, maxNorm: number): Promise<Float32Array> {
  const gpu = await testGpu();
  const out = gpu.createBuffer(8, 'norm');
  const partials = gpu.createBuffer(gradNormScratchFloats(g.length) * 4, 'partials');
  gradNormClipFactor(gpu, gpu.upload(g, 'grads'), g.length, partials, out, maxNorm);
  return gpu.readF32(out, 2);
}

describe('gradient norm clipping', () => {
  // 67: less than one workgroup; 5000: two partials, the last one partly filled;
  // 1048579: 257 partials, so the final pass strides over more partials than it has invocations.
  for (const n of [67, 5000, 256 * 16 * 256 + 3]) {
    it(`computes the global L2 norm of ${n} elements`, async () => {
      const g = randomArray(n, n, -2, 2);
      const ref = gradNormClipRef(toF64(g), 0);
      const [norm, coef] = await normAndCoef(g, 0);
      expectClose([norm], [ref.norm], { atol: 0, rtol: 1e-5, label: 'norm' });
      expect(coef).toBe(1);
    });
  }

  it('clips to maxNorm / (norm + 1e-6) when the norm exceeds maxNorm', async () => {
    const g = randomArray(5000, 7);
    const maxNorm = 0.75;
    const ref = gradNormClipRef(toF64(g), maxNorm);
    expect(ref.coef).toBeLessThan(1);
    const [norm, coef] = await normAndCoef(g, maxNorm);
    expectClose([norm, coef], [ref.norm, ref.coef], { atol: 0, rtol: 1e-5, label: 'norm, coef' });
  });

  it('leaves the gradient alone below maxNorm, for maxNorm 0 and for Infinity', async () => {
    const g = randomArray(67, 8);
    const ref = gradNormClipRef(toF64(g), 0);
    for (const maxNorm of [10 * ref.norm, 0, -1, Infinity]) {
      const [norm, coef] = await normAndCoef(g, maxNorm);
      expectClose([norm], [ref.norm], { atol: 0, rtol: 1e-5, label: `norm (maxNorm ${maxNorm})` });
      expect(coef, `coef (maxNorm ${maxNorm})`).toBe(1);
    }
  });

  it('is bitwise reproducible', async () => {
    const g = randomArray(5000, 9);
    const first = await normAndCoef(g, 1);
    const second = await normAndCoef(g, 1);
    expect(Array.from(second)).toEqual(Array.from(first));
  });
});

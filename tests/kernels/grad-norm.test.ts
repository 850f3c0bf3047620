import { describe, expect, it } from 'vitest';
import { gradNormClipFactor, gradNormScratchFloats } from '../../src/kernels/grad-norm';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type ExpectedOutput } from '../helpers/op-test';
import { gradNormClipRef } from '../reference/grad-norm';

/** Runs the kernel; `out` = [norm, coef]. Compares what `expected` picks of it and returns both. */
async function normAndCoef(g: Float32Array, maxNorm: number, expected: ExpectedOutput | null): Promise<Float32Array> {
  const { out } = await checkOp(await testGpu(), {
    inputs: { grads: g },
    outputs: { partials: gradNormScratchFloats(g.length), out: 2 },
    run: (gpu, t) => gradNormClipFactor(gpu, { grads: t.grads, partials: t.partials, out: t.out }, { n: g.length }, { maxNorm }),
    expected: expected ? { out: expected } : {},
  });
  return out;
}

const normOnly = (norm: number): ExpectedOutput => ({ values: [norm], atol: 0, rtol: 1e-5, pick: (out) => out.subarray(0, 1) });

describe('gradient norm clipping', () => {
  // 67: less than one workgroup; 5000: two partials, the last one partly filled;
  // 1048579: 257 partials, so the final pass strides over more partials than it has invocations.
  for (const n of [67, 5000, 256 * 16 * 256 + 3]) {
    it(`computes the global L2 norm of ${n} elements`, async () => {
      const g = randomArray(n, n, -2, 2);
      const ref = gradNormClipRef(toF64(g), 0);
      const [, coef] = await normAndCoef(g, 0, normOnly(ref.norm));
      expect(coef).toBe(1);
    });
  }

  it('clips to maxNorm / (norm + 1e-6) when the norm exceeds maxNorm', async () => {
    const g = randomArray(5000, 7);
    const maxNorm = 0.75;
    const ref = gradNormClipRef(toF64(g), maxNorm);
    expect(ref.coef).toBeLessThan(1);
    await normAndCoef(g, maxNorm, { values: [ref.norm, ref.coef], atol: 0, rtol: 1e-5 });
  });

  it('leaves the gradient alone below maxNorm, for maxNorm 0 and for Infinity', async () => {
    const g = randomArray(67, 8);
    const ref = gradNormClipRef(toF64(g), 0);
    for (const maxNorm of [10 * ref.norm, 0, -1, Infinity]) {
      const [, coef] = await normAndCoef(g, maxNorm, normOnly(ref.norm));
      expect(coef, `coef (maxNorm ${maxNorm})`).toBe(1);
    }
  });

  it('is bitwise reproducible', async () => {
    const g = randomArray(5000, 9);
    const first = await normAndCoef(g, 1, null);
    const second = await normAndCoef(g, 1, null);
    expect(Array.from(second)).toEqual(Array.from(first));
  });
});

import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGoldenCase } from '../../src/model/golden';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { GOLDEN_TOLERANCE, checkGoldenCase, maxAbsError, worstRelativeError } from '../../src/train/golden-check';
import { testGpu } from '../helpers/gpu';
import { GOLDEN_DIR, SHARED } from '../helpers/paths';

// Every case directory in ../shared/golden runs, so new cases are covered without code changes.
const cases = readdirSync(GOLDEN_DIR, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

describe('golden cases from PyTorch', () => {
  it('finds at least the stories260K case', () => {
    expect(cases).toContain('stories260K-qkv-r4');
  });

  for (const name of cases) {
    for (const recompute of [false, true]) {
      it(`${name}: loss, gradients and one AdamW step match${recompute ? ', with activation recomputation' : ''}`, async () => {
        const golden = await loadGoldenCase(nodeFileSource(resolve(GOLDEN_DIR, name)));
        const { weights } = await openModel(nodeFileSource(resolve(SHARED, 'models', golden.model)));
        const result = await checkGoldenCase(await testGpu(), golden, weights, { recompute });
        expect(result.recompute).toBe(recompute);
        console.log(JSON.stringify(result));
        expect(result.loss_rel_err).toBeLessThanOrEqual(GOLDEN_TOLERANCE.lossRelErr);
        expect(result.grad_max_rel_err).toBeLessThanOrEqual(GOLDEN_TOLERANCE.gradMaxRelErr);
        expect(result.adamw_max_abs_err).toBeLessThanOrEqual(GOLDEN_TOLERANCE.adamwMaxAbsErr);
        // At this small shape no gradient is near f32 noise, so the end-to-end step holds the bar too.
        expect(result.adamw_end_to_end_max_abs_err).toBeLessThanOrEqual(GOLDEN_TOLERANCE.adamwMaxAbsErr);
        if (result.logits_max_abs_err !== null) expect(result.logits_max_abs_err).toBeLessThan(1e-4);
        expect(result.ok).toBe(true);
      });
    }
  }
});

describe('golden check bars', () => {
  const tensor = (...values: number[]) => ({ shape: [values.length], data: Float32Array.from(values) });
  const ref = new Map([['a', tensor(1, -2, 4)]]);

  it('counts a NaN, on either side, as an infinite error', () => {
    expect(worstRelativeError(new Map([['a', tensor(1, NaN, 4)]]), ref).worst).toBe(Infinity);
    expect(worstRelativeError(ref, new Map([['a', tensor(1, NaN, 4)]])).worst).toBe(Infinity);
    expect(maxAbsError(new Map([['a', tensor(NaN, -2, 4)]]), ref)).toBe(Infinity);
    expect(worstRelativeError(new Map([['a', tensor(1, -2, 5)]]), ref)).toEqual({ worst: 0.25, worstName: 'a' });
  });

  it('counts tensors of different lengths as an infinite error', () => {
    expect(worstRelativeError(new Map([['a', tensor(1, -2)]]), ref).worst).toBe(Infinity);
    expect(worstRelativeError(new Map([['a', tensor(1, -2, 4, 0)]]), ref).worst).toBe(Infinity);
    expect(maxAbsError(new Map([['a', tensor(1, -2)]]), ref)).toBe(Infinity);
  });

  it('fails a whole case whose reference has a NaN gradient or a short tensor', async () => {
    const golden = await loadGoldenCase(nodeFileSource(resolve(GOLDEN_DIR, 'stories260K-qkv-r4')));
    const { weights } = await openModel(nodeFileSource(resolve(SHARED, 'models', golden.model)));
    const [name, first] = [...golden.grads][0];
    const withNaN = new Map(golden.grads);
    const poisoned = Float32Array.from(first.data);
    poisoned[3] = NaN;
    withNaN.set(name, { shape: first.shape, data: poisoned });
    const nanResult = await checkGoldenCase(await testGpu(), { ...golden, grads: withNaN }, weights);
    expect(nanResult).toMatchObject({ ok: false, grad_max_rel_err: Infinity, worst_grad_tensor: name });
    const short = new Map(golden.grads);
    short.set(name, { shape: [first.data.length - 1], data: first.data.slice(1) });
    expect(await checkGoldenCase(await testGpu(), { ...golden, grads: short }, weights)).toMatchObject({
      ok: false,
      grad_max_rel_err: Infinity,
    });
  });
});

import { describe, expect, it } from 'vitest';
import { adamwStep, type AdamWHyperparams } from '../../src/kernels/adamw';
import { gradNormClipFactor, gradNormScratchFloats } from '../../src/kernels/grad-norm';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp } from '../helpers/op-test';
import { adamwStepRef } from '../reference/adamw';
import { gradNormClipRef } from '../reference/grad-norm';

/**
 * Flat layout of four awkward sub-tensors at 256-byte (64-float) aligned offsets, zero padding
 * between them, as the trainer packs LoRA parameters: 5000 floats in all.
 */
const TENSORS = [
  { offset: 0, size: 67 },
  { offset: 128, size: 3000 },
  { offset: 3136, size: 7 },
  { offset: 3200, size: 1800 },
];

function packed(n: number, seed: number, tensors: { offset: number; size: number }[]): Float32Array {
  const out = new Float32Array(n);
  for (const [k, { offset, size }] of tensors.entries()) out.set(randomArray(size, seed * 16 + k), offset);
  return out;
}

interface Case {
  name: string;
  n: number;
  tensors: { offset: number; size: number }[];
  weightDecay: number;
  beta1: number;
  maxNorm: number;
}

const CASES: Case[] = [
  { name: 'padded layout, no weight decay', n: 5000, tensors: TENSORS, weightDecay: 0, beta1: 0.9, maxNorm: 0 },
  { name: 'padded layout, weight decay', n: 5000, tensors: TENSORS, weightDecay: 0.1, beta1: 0.9, maxNorm: 0 },
  { name: 'padded layout, weight decay, clipped', n: 5000, tensors: TENSORS, weightDecay: 0.1, beta1: 0.9, maxNorm: 1 },
  // beta1 < 0.5 takes torch.lerp's other formula.
  { name: '67 elements, beta1 0.3, clipped', n: 67, tensors: [{ offset: 0, size: 67 }], weightDecay: 0.01, beta1: 0.3, maxNorm: 0.5 },
];

describe('AdamW step', () => {
  for (const c of CASES) {
    it(`matches float64 over three steps: ${c.name}`, async () => {
      const p0 = packed(c.n, 1, c.tensors);
      const ref = { p: toF64(p0), m: new Float64Array(c.n), v: new Float64Array(c.n) };
      const grads: Record<string, Float32Array> = {};
      const steps: AdamWHyperparams[] = [];
      for (let step = 1; step <= 3; step++) {
        const h: AdamWHyperparams = { lr: 1e-2, beta1: c.beta1, beta2: 0.999, eps: 1e-8, weightDecay: c.weightDecay, step };
        const g = packed(c.n, 10 + step, c.tensors);
        grads[`grads${step}`] = g;
        steps.push(h);
        const { coef } = gradNormClipRef(toF64(g), c.maxNorm);
        if (c.maxNorm > 0) expect(coef).toBeLessThan(1);
        adamwStepRef(ref, toF64(g), coef, h);
      }

      const out = await checkOp(await testGpu(), {
        inputs: grads,
        // The moments start at 0 as in PyTorch.
        outputs: { params: p0, m: new Float32Array(c.n), v: new Float32Array(c.n), clip: 2, partials: gradNormScratchFloats(c.n) },
        run: (gpu, t) =>
          steps.forEach((h, i) => {
            const g = t[`grads${i + 1}`];
            gradNormClipFactor(gpu, { grads: g, partials: t.partials, out: t.clip }, { n: c.n }, { maxNorm: c.maxNorm });
            adamwStep(gpu, { params: t.params, grads: g, m: t.m, v: t.v, clip: t.clip }, { n: c.n }, h);
          }),
        expected: {
          params: { values: ref.p, atol: 1e-6, rtol: 0 },
          m: { values: ref.m, atol: 1e-7, rtol: 1e-5 },
          v: { values: ref.v, atol: 1e-10, rtol: 1e-5 },
        },
      });

      const inTensor = new Uint8Array(c.n);
      for (const { offset, size } of c.tensors) inTensor.fill(1, offset, offset + size);
      for (let i = 0; i < c.n; i++) {
        if (inTensor[i]) continue;
        expect([out.params[i], out.m[i], out.v[i]], `padding element ${i}`).toEqual([0, 0, 0]);
      }
    });
  }
});

import { describe, expect, it } from 'vitest';
import { adamwStep, type AdamWHyperparams } from '../../src/kernels/adamw';
import { gradNormClipFactor, gradNormScratchFloats } from '../../src/kernels/grad-norm';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
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
  tensors.forEach(({ offset, size }, k) => out.set(randomArray(size, seed * 16 + k), offset));
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
      const gpu = await testGpu();
      const p0 = packed(c.n, 1, c.tensors);
      const params = gpu.upload(p0, 'params');
      // WebGPU zero-initialises new buffers: the moments start at 0 as in PyTorch.
      const m = gpu.createBuffer(c.n * 4, 'm');
      const v = gpu.createBuffer(c.n * 4, 'v');
      const clip = gpu.createBuffer(8, 'clip');
      const partials = gpu.createBuffer(gradNormScratchFloats(c.n) * 4, 'partials');
      const ref = { p: toF64(p0), m: new Float64Array(c.n), v: new Float64Array(c.n) };

      for (let step = 1; step <= 3; step++) {
        const h: AdamWHyperparams = { lr: 1e-2, beta1: c.beta1, beta2: 0.999, eps: 1e-8, weightDecay: c.weightDecay, step };
        const g = packed(c.n, 10 + step, c.tensors);
        const grads = gpu.upload(g, `grads ${step}`);
        gradNormClipFactor(gpu, grads, c.n, partials, clip, c.maxNorm);
        adamwStep(gpu, params, grads, m, v, clip, c.n, h);
        const { coef } = gradNormClipRef(toF64(g), c.maxNorm);
        if (c.maxNorm > 0) expect(coef).toBeLessThan(1);
        adamwStepRef(ref, toF64(g), coef, h);
      }

      const p = await gpu.readF32(params, c.n);
      const mOut = await gpu.readF32(m, c.n);
      const vOut = await gpu.readF32(v, c.n);
      expectClose(p, ref.p, { atol: 1e-6, rtol: 0, label: 'params' });
      expectClose(mOut, ref.m, { atol: 1e-7, rtol: 1e-5, label: 'm' });
      expectClose(vOut, ref.v, { atol: 1e-10, rtol: 1e-5, label: 'v' });

      const inTensor = new Uint8Array(c.n);
      for (const { offset, size } of c.tensors) inTensor.fill(1, offset, offset + size);
      for (let i = 0; i < c.n; i++) {
        if (inTensor[i]) continue;
        expect([p[i], mOut[i], vOut[i]], `padding element ${i}`).toEqual([0, 0, 0]);
      }
    });
  }
});

import { describe, expect, it } from 'vitest';
import { ropeBackward, ropeForward } from '../../src/kernels/rope';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { ropeRef, type RopeShape } from '../reference/rope';

// 2 sequences of 7 tokens, 3 heads of width 10: pairs per row (15) and in all (210) are not multiples
// of the 256-wide workgroup.
const SMALL: RopeShape = { M: 14, T: 7, nHeads: 3, headDim: 10, theta: 10000, positionOffset: 0 };
// Positions 490..496, where an f32 angle is only good to about 3e-5 rad.
const FAR: RopeShape = { ...SMALL, positionOffset: 490 };
// SmolLM2-like heads (width 64, theta 1e5) at positions up to 1004.
const WIDE: RopeShape = { M: 10, T: 5, nHeads: 2, headDim: 64, theta: 100000, positionOffset: 1000 };

async function runGpu(shape: RopeShape, x: Float32Array, backward: boolean): Promise<Float32Array> {
  const gpu = await testGpu();
  const { M, T, nHeads, headDim, theta, positionOffset } = shape;
  const buffer = gpu.upload(x, 'x');
  (backward ? ropeBackward : ropeForward)(gpu, buffer, M, T, nHeads, headDim, theta, positionOffset);
  return gpu.readF32(buffer, x.length);
}

const size = (s: RopeShape) => s.M * s.nHeads * s.headDim;

describe('rope kernels', () => {
  it('forward matches the float64 reference at small positions', async () => {
    const x = randomArray(size(SMALL), 21);
    expectClose(await runGpu(SMALL, x, false), ropeRef(toF64(x), SMALL), { atol: 1e-6, rtol: 1e-5 });
  });

  it('rotates new tokens after a KV cache at their absolute positions', async () => {
    // One decode step, and three new tokens of two sequences, at offsets that are no multiple of anything.
    for (const shape of [
      { ...SMALL, M: 1, T: 1, positionOffset: 37 },
      { ...SMALL, M: 6, T: 3, positionOffset: 5 },
    ]) {
      const x = randomArray(size(shape), 26);
      const rotated = await runGpu(shape, x, false);
      expectClose(rotated, ropeRef(toF64(x), shape), { atol: 1e-6, rtol: 1e-5 });
      // The same rows of a full-length pass from position 0.
      const full = { ...shape, M: shape.positionOffset + shape.T, T: shape.positionOffset + shape.T, positionOffset: 0 };
      const padded = new Float64Array(size(full));
      const width = shape.nHeads * shape.headDim;
      padded.set(toF64(x).subarray(0, shape.T * width), shape.positionOffset * width);
      const tail = ropeRef(padded, full).subarray(shape.positionOffset * width);
      expectClose(rotated.subarray(0, shape.T * width), tail, { atol: 1e-6, rtol: 1e-5 });
    }
  });

  it('backward is the rotation by -angle at small positions', async () => {
    const dy = randomArray(size(SMALL), 22);
    expectClose(await runGpu(SMALL, dy, true), ropeRef(toF64(dy), SMALL, { direction: -1 }), { atol: 1e-6, rtol: 1e-5 });
  });

  for (const [name, shape] of [
    ['positions near 500', FAR],
    ['head_dim 64 at positions near 1000', WIDE],
  ] as const) {
    it(`${name}: within f32 angle error of exact, and matches HF's f32 angles closely`, async () => {
      const x = randomArray(size(shape), 23);
      const forward = await runGpu(shape, x, false);
      const backward = await runGpu(shape, x, true);
      // An f32 angle near position p is off by up to ulp(p)/2 plus p times inv_freq's rounding (2^-24
      // relative); |x| <= 1 on both halves of a pair.
      const lastPosition = shape.positionOffset + shape.T - 1;
      const angleError = lastPosition * 2 ** -24 + 2 ** (Math.floor(Math.log2(lastPosition)) - 24);
      const loose = { atol: 2 * angleError + 1e-6, rtol: 0 };
      expectClose(forward, ropeRef(toF64(x), shape), { ...loose, label: 'forward vs exact' });
      expectClose(backward, ropeRef(toF64(x), shape, { direction: -1 }), { ...loose, label: 'backward vs exact' });
      const hf = { hfFloat32Angles: true };
      const tight = { atol: 1e-6, rtol: 0 };
      expectClose(forward, ropeRef(toF64(x), shape, hf), { ...tight, label: 'forward vs HF f32 angles' });
      expectClose(backward, ropeRef(toF64(x), shape, { ...hf, direction: -1 }), {
        ...tight,
        label: 'backward vs HF f32 angles',
      });
    });
  }

  it('the backward reference is the transpose of the forward (central differences)', () => {
    for (const shape of [SMALL, WIDE]) {
      const x = toF64(randomArray(size(shape), 24));
      const w = toF64(randomArray(size(shape), 25));
      const loss = (v: Float64Array) => ropeRef(v, shape).reduce((s, y, i) => s + y * w[i], 0);
      const analytic = ropeRef(w, shape, { direction: -1 });
      const h = 1e-6;
      let worst = 0;
      for (let i = 0; i < x.length; i++) {
        const plus = Float64Array.from(x);
        const minus = Float64Array.from(x);
        plus[i] += h;
        minus[i] -= h;
        worst = Math.max(worst, Math.abs((loss(plus) - loss(minus)) / (2 * h) - analytic[i]));
      }
      expect(worst).toBeLessThan(1e-7);
    }
  });

  it('refuses positions beyond what the shader reduces exactly', async () => {
    const gpu = await testGpu();
    const buffer = gpu.createBuffer(size(SMALL) * 4, 'x');
    expect(() => ropeForward(gpu, buffer, 14, 7, 3, 10, 10000, 100_000)).toThrow(RangeError);
  });
});

import { describe, expect, it } from 'vitest';
import { ropeBackward, ropeForward, ropeInvFreq } from '../../src/kernels/rope';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { checkOp, expectReferenceGradient, type OpCase, type Tolerance } from '../helpers/op-test';
import { ropeInvFreqRef, ropeRef, type RopeScalingRef, type RopeShape } from '../reference/rope';

// 2 sequences of 7 tokens, 3 heads of width 10: pairs per row (15) and in all (210) are not multiples
// of the 256-wide workgroup.
const SMALL: RopeShape = { M: 14, T: 7, nHeads: 3, headDim: 10, theta: 10000, positionOffset: 0 };
// Positions 490..496, where an f32 angle is only good to about 3e-5 rad.
const FAR: RopeShape = { ...SMALL, positionOffset: 490 };
// SmolLM2-like heads (width 64, theta 1e5) at positions up to 1004.
const WIDE: RopeShape = { M: 10, T: 5, nHeads: 2, headDim: 64, theta: 100000, positionOffset: 1000 };

// Long sequences: the first position past 4096, and the last of an 8,192-token context.
const LONG_4097: RopeShape = { M: 6, T: 3, nHeads: 2, headDim: 64, theta: 100000, positionOffset: 4095 };
const LONG_8191: RopeShape = { M: 4, T: 4, nHeads: 3, headDim: 64, theta: 500000, positionOffset: 8188 };
// Llama-3.2-1B: theta 5e5, head_dim 64, factor 32, bands from wavelength 2048 to 8192.
const LLAMA32: RopeScalingRef = { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
const LLAMA3_NEAR: RopeShape = { M: 14, T: 7, nHeads: 2, headDim: 64, theta: 500000, positionOffset: 100, scaling: LLAMA32 };
const LLAMA3_FAR: RopeShape = { ...LLAMA3_NEAR, M: 6, T: 3, positionOffset: 8189 };
// Llama-3.1-8B's head_dim 128 and factor 8 at a position past the original 8,192.
const LLAMA31_FAR: RopeShape = {
  M: 2,
  T: 2,
  nHeads: 1,
  headDim: 128,
  theta: 500000,
  positionOffset: 9000,
  scaling: { ...LLAMA32, factor: 8 },
};

const size = (s: RopeShape) => s.M * s.nHeads * s.headDim;
const TIGHT: Tolerance = { atol: 1e-6, rtol: 1e-5 };

/**
 * An f32 angle near position p is off by up to ulp(p)/2 plus p times inv_freq's rounding (2^-24
 * relative); |x| <= 1 on both halves of a pair.
 */
function angleTolerance(shape: RopeShape): Tolerance {
  const lastPosition = shape.positionOffset + shape.T - 1;
  // Scaled frequencies take a few more f32 operations, each off by at most half an ulp.
  const invFreqUlps = shape.scaling ? 6 : 1;
  const angleError = lastPosition * invFreqUlps * 2 ** -24 + 2 ** (Math.floor(Math.log2(lastPosition)) - 24);
  return { atol: 2 * angleError + 1e-6, rtol: 0 };
}

/** Runs the forward on x_fwd and the backward on x_bwd, both starting from x, in place. */
function rotations(shape: RopeShape, x: Float32Array, expected: { forward: Float64Array; backward: Float64Array }, tol: Tolerance): OpCase {
  const { M, T, nHeads, headDim, theta, positionOffset } = shape;
  const dims = { M, T, nHeads, headDim, positionOffset };
  const options = { theta, scaling: shape.scaling && { type: 'llama3' as const, ...shape.scaling } };
  return {
    outputs: { x_fwd: Float32Array.from(x), x_bwd: Float32Array.from(x) },
    run: (gpu, t) => {
      ropeForward(gpu, { x: t.x_fwd }, dims, options);
      ropeBackward(gpu, { dx: t.x_bwd }, dims, options);
    },
    expected: { x_fwd: { values: expected.forward, ...tol }, x_bwd: { values: expected.backward, ...tol } },
  };
}

const EXACT_CASES = [
  { name: 'small positions', shape: SMALL, seed: 21 },
  // One decode step, and three new tokens of two sequences, after a KV cache: offsets that are no multiple of anything.
  { name: 'one new token at position 37', shape: { ...SMALL, M: 1, T: 1, positionOffset: 37 }, seed: 26 },
  { name: 'three new tokens of two sequences at position 5', shape: { ...SMALL, M: 6, T: 3, positionOffset: 5 }, seed: 26 },
];

describe('rope kernels', () => {
  for (const { name, shape, seed } of EXACT_CASES) {
    it(`forward and backward (rotation by -angle) match the float64 reference: ${name}`, async () => {
      const x = randomArray(size(shape), seed);
      const forward = ropeRef(toF64(x), shape);
      const { x_fwd: rotated } = await checkOp(
        await testGpu(),
        rotations(shape, x, { forward, backward: ropeRef(toF64(x), shape, { direction: -1 }) }, TIGHT),
      );
      if (shape.positionOffset === 0) return;
      // New tokens after a cache: the same rows as a full-length pass from position 0.
      const full = { ...shape, M: shape.positionOffset + shape.T, T: shape.positionOffset + shape.T, positionOffset: 0 };
      const padded = new Float64Array(size(full));
      const width = shape.nHeads * shape.headDim;
      padded.set(toF64(x).subarray(0, shape.T * width), shape.positionOffset * width);
      const tail = ropeRef(padded, full).subarray(shape.positionOffset * width);
      expectClose(rotated.subarray(0, shape.T * width), tail, { ...TIGHT, label: 'rows after the cache vs a full pass' });
    });
  }

  for (const [name, shape] of [
    ['positions near 500', FAR],
    ['head_dim 64 at positions near 1000', WIDE],
    ['positions 4095..4097', LONG_4097],
    ['positions 8188..8191', LONG_8191],
    ['llama3 scaling (Llama-3.2-1B) at positions 100..106', LLAMA3_NEAR],
    ['llama3 scaling (Llama-3.2-1B) at positions 8189..8191', LLAMA3_FAR],
    ['llama3 scaling (factor 8, head_dim 128) at positions 9000..9001', LLAMA31_FAR],
  ] as const) {
    it(`${name}: within f32 angle error of exact, and matches HF's f32 angles closely`, async () => {
      const x = randomArray(size(shape), 23);
      const exact = { forward: ropeRef(toF64(x), shape), backward: ropeRef(toF64(x), shape, { direction: -1 }) };
      const got = await checkOp(await testGpu(), rotations(shape, x, exact, angleTolerance(shape)));
      const hf = { hfFloat32Angles: true };
      const tight = { atol: 1e-6, rtol: 0 };
      expectClose(got.x_fwd, ropeRef(toF64(x), shape, hf), { ...tight, label: 'forward vs HF f32 angles' });
      expectClose(got.x_bwd, ropeRef(toF64(x), shape, { ...hf, direction: -1 }), { ...tight, label: 'backward vs HF f32 angles' });
    });
  }

  for (const shape of [SMALL, WIDE]) {
    it(`the backward reference is the transpose of the forward (central differences), head_dim ${shape.headDim}`, () => {
      const x = toF64(randomArray(size(shape), 24));
      const w = toF64(randomArray(size(shape), 25));
      expectReferenceGradient({
        loss: () => ropeRef(x, shape).reduce((s, y, i) => s + y * w[i], 0),
        wrt: { x: { x, analytic: ropeRef(w, shape, { direction: -1 }), atol: 1e-7, rtol: 0 } },
        h: 1e-6,
        relativeTo: 'analytic',
      });
    });
  }

  it('llama3 inverse frequencies: unscaled above, divided by factor below, blended in the band (float64)', () => {
    const plain = (i: number) => ropeInvFreqRef(i, 64, 500000, null);
    const scaled = (i: number) => ropeInvFreqRef(i, 64, 500000, LLAMA32);
    const wavelength = (i: number) => (2 * Math.PI) / plain(i);
    let bands = { high: 0, low: 0, medium: 0 };
    for (let i = 0; i < 32; i++) {
      if (wavelength(i) < 8192 / 4) {
        expect(scaled(i)).toBe(plain(i));
        bands = { ...bands, high: bands.high + 1 };
      } else if (wavelength(i) > 8192) {
        expect(scaled(i)).toBeCloseTo(plain(i) / 32, 15);
        bands = { ...bands, low: bands.low + 1 };
      } else {
        const s = (8192 / wavelength(i) - 1) / 3;
        expect(scaled(i)).toBeCloseTo((1 - s) * (plain(i) / 32) + s * plain(i), 15);
        expect(scaled(i)).toBeLessThan(plain(i));
        expect(scaled(i)).toBeGreaterThan(plain(i) / 32);
        bands = { ...bands, medium: bands.medium + 1 };
      }
    }
    // theta^(i/32) against 2048 / 2 pi and 8192 / 2 pi: pairs 0..14 high, 15..17 blended, 18..31 low.
    expect(bands).toEqual({ high: 15, low: 14, medium: 3 });
  });

  it("the kernel's f32 table equals the reference's f32 emulation of PyTorch, plain and llama3", () => {
    for (const [headDim, theta, scaling] of [
      [64, 100000, null],
      [64, 500000, LLAMA32],
      [128, 500000, { ...LLAMA32, factor: 8 }],
      [72, 10000, { factor: 4, lowFreqFactor: 1, highFreqFactor: 3, originalMaxPositionEmbeddings: 512 }],
    ] as const) {
      const table = ropeInvFreq(headDim, { theta, scaling: scaling && { type: 'llama3', ...scaling } });
      const reference = Array.from({ length: headDim / 2 }, (_, i) => ropeInvFreqRef(i, headDim, theta, scaling, Math.fround));
      expect(Array.from(table)).toEqual(reference);
    }
  });

  it('refuses positions beyond what the shader reduces exactly', async () => {
    const gpu = await testGpu();
    const x = gpu.createBuffer(size(SMALL) * 4, 'x');
    expect(() => ropeForward(gpu, { x }, { M: 14, T: 7, nHeads: 3, headDim: 10, positionOffset: 100_000 }, { theta: 10000 })).toThrow(
      RangeError,
    );
  });
});

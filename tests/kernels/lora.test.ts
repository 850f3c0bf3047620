import { describe, expect, it } from 'vitest';
import { type Binding, Gpu } from '../../src/gpu/context';
import { loraBackward, loraDown, loraDropoutKept, loraForward, type LoraDropout } from '../../src/kernels/lora';
import { matmulXWt } from '../../src/kernels/matmul';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { checkOp } from '../helpers/op-test';
import { loraBackwardRef, loraForwardRef, type RefMask } from '../reference/lora';
import { combineRef, matmulXWtRef } from '../reference/matmul';

const d = { M: 7, inFeatures: 67, outFeatures: 35, r: 3 };
const { M, inFeatures: I, outFeatures: O, r } = d;
const s = 2; // lora_alpha 6 / r 3
const dropout: LoraDropout = { p: 0.3, seed: 1234567 };
const tol = { atol: 2e-5, rtol: 1e-4 };

const x = randomArray(M * I, 1);
const A = randomArray(r * I, 2, -0.2, 0.2);
// B is zero at PEFT init; non-zero here so that every gradient is exercised.
const B = randomArray(O * r, 3, -0.5, 0.5);
const y0 = randomArray(M * O, 4);
const dy = randomArray(M * O, 5);
const dx0 = randomArray(M * I, 6);
const dA0 = randomArray(r * I, 7);
const dB0 = randomArray(O * r, 8);

function refMask(drop?: LoraDropout): RefMask | undefined {
  return drop && { kept: (i) => loraDropoutKept(drop, i), scale: 1 / (1 - drop.p) };
}

/** Inputs and outputs of the forward; xDrop and u start as NaN, y as y0 (the base projection the adapter adds to). */
const FORWARD = { inputs: { x, A, B }, outputs: { xDrop: M * I, u: M * r, y: y0 } };
const forward = (gpu: Gpu, t: Record<string, Binding>, dropout?: LoraDropout) =>
  loraForward(gpu, { x: t.x, xDrop: t.xDrop, A: t.A, B: t.B, u: t.u, y: t.y }, d, { scaling: s, dropout });

const CASES = [undefined, dropout].flatMap((drop) => [false, true].map((accumulate) => ({ drop, accumulate })));

describe('LoRA adapter kernels', () => {
  for (const drop of [undefined, dropout]) {
    it(`forward adds s * drop(x) A^T B^T to y and saves u (${drop ? `p = ${drop.p}` : 'p = 0'})`, async () => {
      const ref = loraForwardRef(toF64(x), toF64(A), toF64(B), toF64(y0), d, s, refMask(drop));
      await checkOp(await testGpu(), {
        ...FORWARD,
        run: (gpu, t) => forward(gpu, t, drop),
        expected: {
          u: { values: ref.u, ...tol },
          y: { values: ref.y, ...tol },
          ...(drop && { xDrop: { values: ref.xDrop, atol: 0, rtol: 1e-6 } }),
        },
      });
    });
  }

  // The engine's projection: the down-projection alone, then the base product x W^T + bias adding
  // s * u B^T in its epilogue; y starts as NaN, so the base product must write all of it.
  for (const drop of [undefined, dropout]) {
    it(`down-projection, then the base product's epilogue: y = x W^T + bias + s drop(x) A^T B^T (p = ${drop?.p ?? 0})`, async () => {
      const W = randomArray(O * I, 9);
      const bias = randomArray(O, 10);
      const base = combineRef(matmulXWtRef(toF64(x), toF64(W), M, O, I), 1, 0, undefined, toF64(bias));
      const ref = loraForwardRef(toF64(x), toF64(A), toF64(B), base, d, s, refMask(drop));
      await checkOp(await testGpu(), {
        inputs: { x, A, B, W, bias },
        outputs: { xDrop: M * I, u: M * r, y: M * O },
        run: (gpu, t) => {
          loraDown(gpu, { x: t.x, xDrop: t.xDrop, A: t.A, u: t.u }, d, { dropout: drop });
          const lora = { u: t.u, B: t.B, r, scaling: s };
          matmulXWt(gpu, { X: t.x, W: t.W, Y: t.y, bias: t.bias }, { M, N: O, K: I }, { lora });
        },
        expected: {
          u: { values: ref.u, ...tol },
          y: { values: ref.y, ...tol },
          ...(drop && { xDrop: { values: ref.xDrop, atol: 0, rtol: 1e-6 } }),
        },
      });
    });
  }

  for (const { drop, accumulate } of CASES) {
    it(`backward matches the reference (${drop ? `p = ${drop.p}` : 'p = 0'}, accumulate = ${accumulate})`, async () => {
      const ref = loraBackwardRef(toF64(dy), toF64(x), toF64(A), toF64(B), d, s, refMask(drop));
      const plus = (base: Float32Array, add: Float64Array) => add.map((v, i) => v + base[i]);
      await checkOp(await testGpu(), {
        inputs: { ...FORWARD.inputs, dy },
        outputs: {
          ...FORWARD.outputs,
          // Overwriting must not read the old gradients: NaN there would show.
          dA: accumulate ? dA0 : r * I,
          dB: accumulate ? dB0 : O * r,
          du: M * r,
          dx: dx0,
          ...(drop && { dxScratch: M * I }),
        },
        run: (gpu, t) => {
          forward(gpu, t, drop);
          loraBackward(
            gpu,
            {
              dy: t.dy,
              x: t.x,
              xDrop: t.xDrop,
              u: t.u,
              A: t.A,
              B: t.B,
              dA: t.dA,
              dB: t.dB,
              du: t.du,
              dx: t.dx,
              dxScratch: drop && t.dxScratch,
            },
            d,
            { scaling: s, accumulate, dropout: drop },
          );
        },
        expected: {
          du: { values: ref.du, ...tol },
          dB: { values: accumulate ? plus(dB0, ref.dB) : ref.dB, ...tol },
          dA: { values: accumulate ? plus(dA0, ref.dA) : ref.dA, ...tol },
          // dx already holds the base path's dY W: the adapter adds to it.
          dx: { values: plus(dx0, ref.dxAdapter), ...tol },
        },
      });
    });
  }

  for (const drop of [undefined, dropout]) {
    it(`backward without dx gives the same dA and dB and leaves the scratch untouched (${drop ? `p = ${drop.p}` : 'p = 0'})`, async () => {
      const ref = loraBackwardRef(toF64(dy), toF64(x), toF64(A), toF64(B), d, s, refMask(drop));
      const got = await checkOp(await testGpu(), {
        inputs: { ...FORWARD.inputs, dy },
        outputs: { ...FORWARD.outputs, dA: r * I, dB: O * r, du: M * r, dxScratch: M * I },
        run: (gpu, t) => {
          forward(gpu, t, drop);
          const { dy: dY, x: X, xDrop, u, A: a, B: b, dA, dB, du, dxScratch } = t;
          loraBackward(gpu, { dy: dY, x: X, xDrop, u, A: a, B: b, dA, dB, du, dxScratch }, d, {
            scaling: s,
            accumulate: false,
            dropout: drop,
          });
        },
        expected: { du: { values: ref.du, ...tol }, dB: { values: ref.dB, ...tol }, dA: { values: ref.dA, ...tol } },
      });
      expect(got.dxScratch.every(Number.isNaN)).toBe(true);
    });
  }

  // On GPU schedules (forced here) dA and dB are long thin products: 1,000 tokens split into slices
  // (split-K, src/kernels/matmul-vec4.ts) whose partial sums a second pass adds and scales.
  for (const accumulate of [false, true]) {
    it(`backward on the GPU schedules splits dA and dB over the tokens (accumulate = ${accumulate})`, async () => {
      const gpu = new Gpu((await testGpu()).device);
      gpu.schedules = 'gpu';
      const long = { ...d, M: 1000 };
      const lx = randomArray(long.M * I, 11);
      const ldy = randomArray(long.M * O, 12);
      const ref = loraBackwardRef(toF64(ldy), toF64(lx), toF64(A), toF64(B), long, s);
      const plus = (base: Float32Array, add: Float64Array) => add.map((v, i) => v + base[i]);
      const entries: string[] = [];
      gpu.observeDispatches((dispatch) => entries.push(dispatch.kernel.name));
      await checkOp(gpu, {
        inputs: { x: lx, A, B, dy: ldy },
        outputs: { u: long.M * r, y: long.M * O, dA: accumulate ? dA0 : r * I, dB: accumulate ? dB0 : O * r, du: long.M * r },
        run: (g, t) => {
          loraForward(g, { x: t.x, A: t.A, B: t.B, u: t.u, y: t.y }, long, { scaling: s });
          loraBackward(g, { dy: t.dy, x: t.x, u: t.u, A: t.A, B: t.B, dA: t.dA, dB: t.dB, du: t.du }, long, { scaling: s, accumulate });
        },
        expected: {
          du: { values: ref.du, ...tol },
          dB: { values: accumulate ? plus(dB0, ref.dB) : ref.dB, ...tol },
          dA: { values: accumulate ? plus(dA0, ref.dA) : ref.dA, ...tol },
        },
      });
      expect(entries.filter((e) => e === 'matmul_vec4_backward_weight_split')).toHaveLength(2);
      expect(entries.filter((e) => e === 'matmul_vec4_split_sum')).toHaveLength(2);
    });
  }

  it('drops about p of the elements, differently for another seed', () => {
    const n = 100_000;
    let dropped = 0;
    let differ = 0;
    for (let i = 0; i < n; i++) {
      const kept = loraDropoutKept(dropout, i);
      if (!kept) dropped++;
      if (kept !== loraDropoutKept({ ...dropout, seed: dropout.seed + 1 }, i)) differ++;
    }
    expect(Math.abs(dropped / n - dropout.p)).toBeLessThan(0.01);
    // Independent masks disagree on 2 p (1 - p) of the elements.
    expect(Math.abs(differ / n - 2 * dropout.p * (1 - dropout.p))).toBeLessThan(0.01);
  });

  it('dA and dB match finite differences of the GPU forward on L = sum(G * y)', async () => {
    const gpu = await testGpu();
    const got = await checkOp(gpu, {
      inputs: { ...FORWARD.inputs, dy },
      outputs: { ...FORWARD.outputs, dA: r * I, dB: O * r, du: M * r, dx: dx0, dxScratch: M * I },
      run: (g, t) => {
        forward(g, t, dropout);
        loraBackward(
          g,
          { dy: t.dy, x: t.x, xDrop: t.xDrop, u: t.u, A: t.A, B: t.B, dA: t.dA, dB: t.dB, du: t.du, dx: t.dx, dxScratch: t.dxScratch },
          d,
          { scaling: s, accumulate: false, dropout },
        );
      },
      expected: {},
    });
    const [gotA, gotB] = [got.dA, got.dB];

    const loss = async (a: Float32Array, b: Float32Array) => {
      const { y } = await checkOp(gpu, {
        inputs: { x, A: a, B: b },
        outputs: FORWARD.outputs,
        run: (g, t) => forward(g, t, dropout),
        expected: {},
      });
      let sum = 0;
      for (let i = 0; i < y.length; i++) sum += dy[i] * y[i];
      return sum;
    };
    // L is linear in each single entry of A or B, so a central difference is exact up to f32
    // rounding of y, and a large step keeps that rounding small relative to the step.
    const h = 0.25;
    const probe = async (which: 'A' | 'B', index: number) => {
      const a = Float32Array.from(A);
      const b = Float32Array.from(B);
      const target = which === 'A' ? a : b;
      const original = target[index];
      target[index] = original + h;
      const up = await loss(a, b);
      target[index] = original - h;
      const down = await loss(a, b);
      return (up - down) / (2 * h);
    };
    const indicesA = [0, 1, 66, 67, 100, 133, 150, 200];
    const indicesB = [0, 2, 3, 50, 77, 104];
    const fdA = [];
    for (const i of indicesA) fdA.push(await probe('A', i));
    const fdB = [];
    for (const i of indicesB) fdB.push(await probe('B', i));
    expectClose(
      indicesA.map((i) => gotA[i]),
      fdA,
      { atol: 2e-4, rtol: 1e-3, label: 'dA vs finite differences' },
    );
    expectClose(
      indicesB.map((i) => gotB[i]),
      fdB,
      { atol: 2e-4, rtol: 1e-3, label: 'dB vs finite differences' },
    );
  });
});

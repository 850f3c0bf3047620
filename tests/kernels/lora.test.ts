import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context';
import { loraBackward, loraDropoutKept, loraForward, type LoraDropout } from '../../src/kernels/lora';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { loraBackwardRef, loraForwardRef, type RefMask } from '../reference/lora';

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

function nan(n: number): Float32Array {
  return new Float32Array(n).fill(NaN);
}

function buffers(gpu: Gpu, a = A, b = B) {
  return {
    x: gpu.upload(x, 'x'),
    xDrop: gpu.upload(nan(M * I), 'xDrop'),
    A: gpu.upload(a, 'A'),
    B: gpu.upload(b, 'B'),
    u: gpu.upload(nan(M * r), 'u'),
    y: gpu.upload(y0, 'y'),
  };
}

describe('LoRA adapter kernels', () => {
  for (const drop of [undefined, dropout]) {
    const name = drop ? `p = ${drop.p}` : 'p = 0';

    it(`forward adds s * drop(x) A^T B^T to y and saves u (${name})`, async () => {
      const gpu = await testGpu();
      const t = buffers(gpu);
      loraForward(gpu, t, d, s, drop);
      const ref = loraForwardRef(toF64(x), toF64(A), toF64(B), toF64(y0), d, s, refMask(drop));
      expectClose(await gpu.readF32(t.u, M * r), ref.u, { ...tol, label: 'u' });
      expectClose(await gpu.readF32(t.y, M * O), ref.y, { ...tol, label: 'y' });
      if (drop) expectClose(await gpu.readF32(t.xDrop, M * I), ref.xDrop, { atol: 0, rtol: 1e-6, label: 'xDrop' });
    });

    for (const accumulate of [false, true]) {
      it(`backward matches the reference (${name}, accumulate = ${accumulate})`, async () => {
        const gpu = await testGpu();
        const t = buffers(gpu);
        loraForward(gpu, t, d, s, drop);
        // Overwriting must not read the old gradients: NaN there would show.
        const dA = gpu.upload(accumulate ? dA0 : nan(r * I), 'dA');
        const dB = gpu.upload(accumulate ? dB0 : nan(O * r), 'dB');
        const du = gpu.upload(nan(M * r), 'du');
        const dx = gpu.upload(dx0, 'dx');
        const dxScratch = drop ? gpu.upload(nan(M * I), 'dxScratch') : undefined;
        loraBackward(gpu, { ...t, dy: gpu.upload(dy, 'dy'), dA, dB, du, dx, dxScratch }, d, s, accumulate, drop);

        const ref = loraBackwardRef(toF64(dy), toF64(x), toF64(A), toF64(B), d, s, refMask(drop));
        const plus = (base: Float32Array, add: Float64Array) => add.map((v, i) => v + base[i]);
        expectClose(await gpu.readF32(du, M * r), ref.du, { ...tol, label: 'du' });
        expectClose(await gpu.readF32(dB, O * r), accumulate ? plus(dB0, ref.dB) : ref.dB, { ...tol, label: 'dB' });
        expectClose(await gpu.readF32(dA, r * I), accumulate ? plus(dA0, ref.dA) : ref.dA, { ...tol, label: 'dA' });
        // dx already holds the base path's dY W: the adapter adds to it.
        expectClose(await gpu.readF32(dx, M * I), plus(dx0, ref.dxAdapter), { ...tol, label: 'dx' });
      });
    }
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
    const t = buffers(gpu);
    loraForward(gpu, t, d, s, dropout);
    const dA = gpu.createBuffer(r * I * 4, 'dA');
    const dB = gpu.createBuffer(O * r * 4, 'dB');
    loraBackward(
      gpu,
      {
        ...t,
        dy: gpu.upload(dy, 'G'),
        dA,
        dB,
        du: gpu.createBuffer(M * r * 4, 'du'),
        dx: gpu.upload(dx0, 'dx'),
        dxScratch: gpu.createBuffer(M * I * 4, 'dxScratch'),
      },
      d,
      s,
      false,
      dropout,
    );
    const gotA = await gpu.readF32(dA, r * I);
    const gotB = await gpu.readF32(dB, O * r);

    const loss = async (a: Float32Array, b: Float32Array) => {
      const f = buffers(gpu, a, b);
      loraForward(gpu, f, d, s, dropout);
      const y = await gpu.readF32(f.y, M * O);
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
    expectClose(indicesA.map((i) => gotA[i]), fdA, { atol: 2e-4, rtol: 1e-3, label: 'dA vs finite differences' });
    expectClose(indicesB.map((i) => gotB[i]), fdB, { atol: 2e-4, rtol: 1e-3, label: 'dB vs finite differences' });
  });
});

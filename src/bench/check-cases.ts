/**
 * The ops `bench --check` runs on a GPU schedule and on its CPU twin (check.ts): one layer's
 * attention, RMSNorm, elementwise kernels and matmul products at a real config's shapes, on random inputs.
 */
import type { Binding, Gpu } from '../gpu/context';
import { attentionBackward, attentionForward, attentionForwardCached } from '../kernels/attention';
import type { ElementwiseOptions } from '../kernels/elementwise';
import { matmulDyTX, matmulDyW, matmulXWt, matmulXWtGroups } from '../kernels/matmul';
import { subgroupMatmulSupported } from '../kernels/matmul-subgroup';
import { residualForward } from '../kernels/residual';
import { type RmsnormOptions, residualRmsnormForward, rmsnormBackwardAccumulate, rmsnormForward } from '../kernels/rmsnorm';
import { swigluBackwardInplace, swigluForward } from '../kernels/swiglu';
import { seededUniform } from '../util/random';
import type { CheckOptions } from './check';

/** One op run twice on the same inputs: once on a GPU schedule, once on its CPU twin. */
export interface TwinCase {
  family: string;
  op: string;
  gpu: string;
  cpu: string;
  shape: Record<string, number>;
  inputs: Record<string, Float32Array>;
  /** Element counts of outputs that start as NaN, or the starting contents of one the op adds into. */
  outputs: Record<string, number | Float32Array>;
  /** Records the op on `tensors` with `schedule` (the case's gpu or cpu). */
  run(gpu: Gpu, tensors: Record<string, Binding>, schedule: string): void;
}

export function twinCases(gpu: Gpu, o: CheckOptions): TwinCase[] {
  const { hiddenSize: C, intermediateSize: I, numHeads: H, numKvHeads: KV, headDim: D } = o.config;
  const B = o.batch;
  const T = o.seq;
  const M = B * T;
  let seed = o.seed;
  const random = (n: number, lo = -1, hi = 1) => {
    const uniform = seededUniform(++seed);
    return Float32Array.from({ length: n }, () => lo + (hi - lo) * uniform());
  };
  const attention = { B, T, H, KV, D };
  const tail = Math.min(T, 16);
  const cached = { B, T: tail, H, KV, D, past: T - tail, S: T };
  const cases: TwinCase[] = [
    {
      family: 'attention',
      op: 'forward + backward',
      gpu: 'tiled',
      cpu: 'rows',
      shape: attention,
      inputs: { q: random(M * H * D, -2, 2), k: random(M * KV * D, -2, 2), v: random(M * KV * D), dout: random(M * H * D) },
      outputs: { out: M * H * D, stats: 2 * B * H * T, dq: M * H * D, dk: M * KV * D, dv: M * KV * D },
      run: (g, t, schedule) => {
        const options = { schedule: schedule as 'rows' | 'tiled' };
        attentionForward(g, { q: t.q, k: t.k, v: t.v, out: t.out, stats: t.stats }, attention, options);
        attentionBackward(
          g,
          { dout: t.dout, q: t.q, k: t.k, v: t.v, out: t.out, stats: t.stats, dq: t.dq, dk: t.dk, dv: t.dv },
          attention,
          options,
        );
      },
    },
    {
      family: 'attention',
      op: `KV-cache forward (${tail} new of ${T})`,
      gpu: 'tiled',
      cpu: 'rows',
      shape: cached,
      inputs: { q: random(B * tail * H * D, -2, 2), kCache: random(M * KV * D, -2, 2), vCache: random(M * KV * D) },
      outputs: { out: B * tail * H * D, stats: B * H * tail },
      run: (g, t, schedule) =>
        attentionForwardCached(g, { q: t.q, kCache: t.kCache, vCache: t.vCache, out: t.out, stats: t.stats }, cached, {
          schedule: schedule as 'rows' | 'tiled',
        }),
    },
  ];
  const eps = o.config.rmsNormEps;
  const reductions: boolean[] = gpu.hasSubgroups ? [true, false] : [false];
  for (const subgroups of reductions) {
    const name = `workgroup (${subgroups ? 'subgroup' : 'tree'} sums)`;
    const norm = (schedule: string): RmsnormOptions => (schedule === 'rows' ? { schedule: 'rows' } : { schedule: 'workgroup', subgroups });
    const x = random(M * C);
    const w = random(C, 0.5, 1.5);
    cases.push(
      {
        family: 'rmsnorm',
        op: 'forward + backward (accumulating)',
        gpu: name,
        cpu: 'rows',
        shape: { M, C },
        inputs: { x, w, dy: random(M * C) },
        outputs: { y: M * C, rstd: M, dx: random(M * C) },
        run: (g, t, schedule) => {
          rmsnormForward(g, { x: t.x, weight: t.w, y: t.y, rstd: t.rstd }, { M, C }, { ...norm(schedule), eps });
          rmsnormBackwardAccumulate(g, { dy: t.dy, x: t.x, weight: t.w, rstd: t.rstd, dx: t.dx }, { M, C }, norm(schedule));
        },
      },
      {
        family: 'rmsnorm',
        op: 'residual + rmsnorm forward',
        gpu: name,
        cpu: 'rows',
        shape: { M, C },
        inputs: { x, branch: random(M * C), w },
        outputs: { h: M * C, y: M * C, rstd: M },
        run: (g, t, schedule) =>
          residualRmsnormForward(
            g,
            { x: t.x, branch: t.branch, h: t.h, weight: t.w, y: t.y, rstd: t.rstd },
            { M, C },
            { ...norm(schedule), eps },
          ),
      },
    );
  }
  const elementwise = (schedule: string): ElementwiseOptions => ({ schedule: schedule as 'vec4' | 'scalar' });
  cases.push(
    {
      family: 'residual',
      op: 'forward',
      gpu: 'vec4',
      cpu: 'scalar',
      shape: { n: M * C },
      inputs: { a: random(M * C), b: random(M * C) },
      outputs: { y: M * C },
      run: (g, t, schedule) => residualForward(g, { a: t.a, b: t.b, y: t.y }, { n: M * C }, elementwise(schedule)),
    },
    {
      family: 'swiglu',
      op: 'forward + backward',
      gpu: 'vec4',
      cpu: 'scalar',
      shape: { n: M * I },
      inputs: { dout: random(M * I) },
      // The backward overwrites gate and up with their gradients, so each schedule gets its own copies.
      outputs: { out: M * I, gate: random(M * I, -6, 6), up: random(M * I) },
      run: (g, t, schedule) => {
        swigluForward(g, { gate: t.gate, up: t.up, out: t.out }, { n: M * I }, elementwise(schedule));
        swigluBackwardInplace(g, { dout: t.dout, gate: t.gate, up: t.up }, { n: M * I }, elementwise(schedule));
      },
    },
  );
  // The vec4 LoRA gradients split the token reduction where the shape calls for it (matmul-vec4.ts).
  // The subgroup schedule leaves split products to vec4, so its dW cases ask for one slice: the
  // subgroup kernel itself is what they check.
  const matmul = (schedule: string) =>
    schedule === 'subgroup' ? { schedule: 'subgroup' as const, splitK: 1 } : { schedule: schedule as 'vec4' | 'tiled' | 'direct' };
  for (const gpuSchedule of subgroupMatmulSupported(gpu) ? ['vec4', 'subgroup', 'tiled'] : ['vec4', 'tiled']) {
    cases.push(
      {
        family: 'matmul',
        op: 'gate_proj forward (XWt)',
        gpu: gpuSchedule,
        cpu: 'direct',
        shape: { M, N: I, K: C },
        inputs: { X: random(M * C), W: random(I * C) },
        outputs: { Y: M * I },
        run: (g, t, schedule) => matmulXWt(g, { X: t.X, W: t.W, Y: t.Y }, { M, N: I, K: C }, matmul(schedule)),
      },
      {
        family: 'matmul',
        op: 'q/k/v forward with bias, one grouped product (XWt groups)',
        gpu: gpuSchedule,
        cpu: 'direct',
        shape: { M, Nq: H * D, Nkv: KV * D, K: C },
        inputs: { X: random(M * C), W: random((H + 2 * KV) * D * C), bias: random((H + 2 * KV) * D) },
        outputs: { Y: M * (H + 2 * KV) * D },
        run: (g, t, schedule) => {
          const widths = [H * D, KV * D, KV * D];
          const at = (b: Binding, floats: number, start: number) => ({ buffer: b as GPUBuffer, offset: start * 4, size: floats * 4 });
          const groups = widths.map((N, i) => {
            const before = widths.slice(0, i).reduce((sum, n) => sum + n, 0);
            return { N, W: at(t.W, N * C, before * C), Y: at(t.Y, M * N, M * before), bias: at(t.bias, N, before) };
          });
          matmulXWtGroups(g, { X: t.X, groups }, { M, K: C }, matmul(schedule));
        },
      },
      {
        family: 'matmul',
        op: `q_proj forward with the LoRA epilogue, r=${o.r} (XWt + bias + s u B^T)`,
        gpu: gpuSchedule,
        cpu: 'direct',
        shape: { M, N: H * D, K: C, r: o.r },
        inputs: { X: random(M * C), W: random(H * D * C), bias: random(H * D), u: random(M * o.r), B: random(H * D * o.r) },
        outputs: { Y: M * H * D },
        run: (g, t, schedule) =>
          matmulXWt(
            g,
            { X: t.X, W: t.W, Y: t.Y, bias: t.bias },
            { M, N: H * D, K: C },
            {
              ...matmul(schedule),
              lora: { u: t.u, B: t.B, r: o.r, scaling: 2 },
            },
          ),
      },
      {
        family: 'matmul',
        op: 'gate_proj input gradient (DyW, accumulating)',
        gpu: gpuSchedule,
        cpu: 'direct',
        shape: { M, N: I, K: C },
        inputs: { dY: random(M * I), W: random(I * C) },
        outputs: { dX: random(M * C) },
        run: (g, t, schedule) => matmulDyW(g, { dY: t.dY, W: t.W, dX: t.dX }, { M, N: I, K: C }, { ...matmul(schedule), beta: 1 }),
      },
      {
        family: 'matmul',
        op: `LoRA weight gradient dA, r=${o.r} (DyTX)`,
        gpu: gpuSchedule,
        cpu: 'direct',
        shape: { M, N: o.r, K: C },
        inputs: { dY: random(M * o.r), X: random(M * C) },
        outputs: { dW: o.r * C },
        run: (g, t, schedule) => matmulDyTX(g, { dY: t.dY, X: t.X, dW: t.dW }, { M, N: o.r, K: C }, matmul(schedule)),
      },
      {
        family: 'matmul',
        op: `LoRA weight gradient dB, r=${o.r} (DyTX, accumulating)`,
        gpu: gpuSchedule,
        cpu: 'direct',
        shape: { M, N: C, K: o.r },
        inputs: { dY: random(M * C), X: random(M * o.r) },
        outputs: { dW: random(C * o.r) },
        run: (g, t, schedule) => matmulDyTX(g, { dY: t.dY, X: t.X, dW: t.dW }, { M, N: C, K: o.r }, { ...matmul(schedule), beta: 1 }),
      },
    );
  }
  return cases;
}

/** Uploads the inputs once, runs each schedule into its own outputs (NaN-filled or the given contents), and compares them. */

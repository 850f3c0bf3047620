import type { Gpu } from '../../src/gpu/context';
import { attentionForward } from '../../src/kernels/attention';
import { crossEntropyForwardBackward } from '../../src/kernels/cross-entropy';
import { embeddingForward } from '../../src/kernels/embedding';
import { loraForward } from '../../src/kernels/lora';
import { matmulXWt } from '../../src/kernels/matmul';
import { residualForward } from '../../src/kernels/residual';
import { rmsnormForward } from '../../src/kernels/rmsnorm';
import { ropeForward } from '../../src/kernels/rope';
import { swigluForward } from '../../src/kernels/swiglu';
import type { RefOps } from '../reference/llama';
import { checkOp, type OpCase } from './op-test';

const f32 = (x: Float64Array) => Float32Array.from(x);

/**
 * Every op family of the reference model run by the engine's GPU kernel: inputs rounded to f32,
 * one kernel call (through checkOp, so outputs start as NaN), the result read back as float64.
 * Swapping one family of FLOAT64_OPS for its entry here shows what that kernel alone does to the
 * model's loss.
 */
export function gpuOps(gpu: Gpu): RefOps {
  const run = async (c: Omit<OpCase, 'expected'>, output: string) =>
    Float64Array.from((await checkOp(gpu, { ...c, expected: {} }))[output]);
  return {
    embedding: (ids, table, C) =>
      run(
        {
          inputs: { ids, table: f32(table) },
          outputs: { out: ids.length * C },
          run: (g, t) =>
            embeddingForward(g, { ids: t.ids, table: t.table, out: t.out }, { M: ids.length, C, rowStart: 0, rowCount: table.length / C }),
        },
        'out',
      ),
    rmsnorm: (x, w, M, C, eps) =>
      run(
        {
          inputs: { x: f32(x), w: f32(w) },
          outputs: { y: M * C, rstd: M },
          run: (g, t) => rmsnormForward(g, { x: t.x, weight: t.w, y: t.y, rstd: t.rstd }, { M, C }, { eps }),
        },
        'y',
      ),
    linear: (x, w, bias, M, N, K) =>
      run(
        {
          inputs: { x: f32(x), w: f32(w), ...(bias && { bias: f32(bias) }) },
          outputs: { y: M * N },
          run: (g, t) => matmulXWt(g, { X: t.x, W: t.w, Y: t.y, bias: bias && t.bias }, { M, N, K }),
        },
        'y',
      ),
    lora: (x, A, B, y0, d, scaling) =>
      run(
        {
          inputs: { x: f32(x), A: f32(A), B: f32(B) },
          outputs: { u: d.M * d.r, y: f32(y0) },
          run: (g, t) => loraForward(g, { x: t.x, A: t.A, B: t.B, u: t.u, y: t.y }, d, { scaling }),
        },
        'y',
      ),
    rope: (x, { M, T, nHeads, headDim, theta, positionOffset, scaling }) =>
      run(
        {
          outputs: { x: f32(x) },
          run: (g, t) =>
            ropeForward(
              g,
              { x: t.x },
              { M, T, nHeads, headDim, positionOffset },
              { theta, scaling: scaling && { type: 'llama3', ...scaling } },
            ),
        },
        'x',
      ),
    attention: (q, k, v, d) =>
      run(
        {
          inputs: { q: f32(q), k: f32(k), v: f32(v) },
          outputs: { out: q.length, stats: 2 * d.B * d.H * d.T },
          run: (g, t) => attentionForward(g, { q: t.q, k: t.k, v: t.v, out: t.out, stats: t.stats }, d),
        },
        'out',
      ),
    swiglu: (gate, up) =>
      run(
        {
          inputs: { gate: f32(gate), up: f32(up) },
          outputs: { out: gate.length },
          run: (g, t) => swigluForward(g, { gate: t.gate, up: t.up, out: t.out }, { n: gate.length }),
        },
        'out',
      ),
    residual: (a, b) =>
      run(
        {
          inputs: { a: f32(a), b: f32(b) },
          outputs: { y: a.length },
          run: (g, t) => residualForward(g, { a: t.a, b: t.b, y: t.y }, { n: a.length }),
        },
        'y',
      ),
    crossEntropy: (hidden, E, targets, M, C, V) =>
      run(
        {
          inputs: { hidden: f32(hidden), E: f32(E), targets },
          outputs: { rowLoss: M, stats: M * 4, scratch: M * V },
          run: (g, t) =>
            crossEntropyForwardBackward(
              g,
              {
                hidden: t.hidden,
                targets: t.targets,
                rowLoss: t.rowLoss,
                scratch: t.scratch,
                stats: t.stats,
                lmHead: [{ weight: t.E, rowStart: 0, rows: V }],
              },
              { M, C, V, chunk: V },
            ),
        },
        'rowLoss',
      ),
  };
}

/**
 * X W^T with the LoRA epilogue (matmulXWt's `lora` option): alpha * X W^T + beta * Y + bias + s * u B^T
 * in one product per schedule (direct, tiled, vec4) and weight format (f32, bf16, f16, GGUF blocks),
 * against the float64 product of the weights as the GPU decodes them (16-bit: rounded; blocks: the
 * CPU dequantizer). Outputs start as NaN (beta 0) or with old contents (beta 1).
 */
import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/gpu/context';
import { dequantize } from '../../src/gguf/quants';
import { matmulXWt } from '../../src/kernels/matmul';
import { asWords, type WeightFormat } from '../../src/model/weight-format';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { randomBlocks } from '../helpers/random-blocks';
import { combineRef, loraEpilogueRef, matmulXWtRef } from '../reference/matmul';
import { roundAllTo } from '../reference/weight-rounding';

type Schedule = 'direct' | 'tiled' | 'vec4';

interface Case {
  M: number;
  N: number;
  K: number;
  r: number;
  alpha: number;
  beta: number;
  bias: boolean;
}

/** W [N, K] as the GPU reads it in `format`, and the float64 values it decodes to. */
function weight(format: WeightFormat, N: number, K: number, seed: number): { stored: Float32Array | Uint32Array; w64: Float64Array } {
  if (format === 'f32' || format === 'bf16' || format === 'f16') {
    const w = randomArray(N * K, seed);
    return format === 'f32' ? { stored: w, w64: toF64(w) } : { stored: packWeights(w, format), w64: roundAllTo(format, w) };
  }
  const { bytes, type } = randomBlocks(format, N * K, seed);
  return { stored: asWords(bytes), w64: toF64(dequantize(type, bytes, N * K)) };
}

/** max over outputs of the sum of |terms|: the scale of each output's f32 rounding error. */
function magnitude(parts: Float64Array[]): number {
  let max = 0;
  for (let i = 0; i < parts[0].length; i++)
    max = Math.max(
      max,
      parts.reduce((sum, p) => sum + Math.abs(p[i]), 0),
    );
  return max;
}

const abs = (v: Float64Array) => v.map(Math.abs);

/** Runs one fused product on random inputs and returns the entry points it dispatched. */
async function fusedCase(schedule: Schedule, format: WeightFormat, c: Case): Promise<string[]> {
  const { M, N, K, r, alpha, beta } = c;
  const s = 1.75;
  const seed = M + 3 * N + 7 * K + r;
  const x = randomArray(M * K, seed + 1);
  const { stored, w64 } = weight(format, N, K, seed + 2);
  const u = randomArray(M * r, seed + 3);
  const B = randomArray(N * r, seed + 4, -0.5, 0.5);
  const bias = c.bias ? randomArray(N, seed + 5) : undefined;
  const old = beta === 0 ? undefined : randomArray(M * N, seed + 6);
  const [x64, u64, B64] = [toF64(x), toF64(u), toF64(B)];
  const base = combineRef(matmulXWtRef(x64, w64, M, N, K), alpha, beta, old && toF64(old), bias && toF64(bias));
  const expected = loraEpilogueRef(base, u64, B64, M, N, r, s);
  const scale = magnitude([
    matmulXWtRef(abs(x64), abs(w64), M, N, K).map((v) => Math.abs(alpha) * v),
    old ? toF64(old).map((v) => Math.abs(beta * v)) : new Float64Array(M * N),
    matmulXWtRef(abs(u64), abs(B64), M, N, r).map((v) => s * v),
  ]);
  const gpu = await testGpu();
  const entries: string[] = [];
  const stop = gpu.observeDispatches((d) => entries.push(d.kernel.name));
  await checkOp(gpu, {
    inputs: { x, w: stored, u, B, ...(bias && { bias }) },
    outputs: { y: old ?? M * N },
    run: (g, t) =>
      matmulXWt(
        g,
        { X: t.x, W: t.w, Y: t.y, bias: bias && t.bias },
        { M, N, K },
        { alpha, beta, schedule, format, lora: { u: t.u, B: t.B, r, scaling: s } },
      ),
    expected: { y: { values: expected, atol: 4e-6 * scale + (bias ? 1e-6 : 0), rtol: 1e-5 } },
  }).finally(stop);
  return entries;
}

/** The entry point a schedule runs for the fused product (vec4 reads no block format, which take the tiled one). */
function entryOf(schedule: Schedule, format: WeightFormat, bias: boolean): string {
  const name = bias ? 'forward_bias_lora' : 'forward_lora';
  const vec4 = schedule === 'vec4' && (format === 'f32' || format === 'bf16' || format === 'f16');
  if (vec4) return `matmul_vec4_${name}`;
  return schedule === 'direct' ? `matmul_${name}_direct` : `matmul_${name}`;
}

// M = 7 and 70 (one and two row tiles), N = 67 (no multiple of 4 or 64), K = 67 (odd: 16-bit rows start
// mid-word) and 72, r = 3 and 16; alpha != 1, beta 0 (NaN output) and 1, with and without bias.
const FLOAT_CASES: Case[] = [
  { M: 7, N: 67, K: 67, r: 3, alpha: 1, beta: 0, bias: false },
  { M: 70, N: 67, K: 72, r: 16, alpha: 0.5, beta: 0, bias: true },
  { M: 7, N: 67, K: 72, r: 16, alpha: -2, beta: 1, bias: false },
  { M: 70, N: 67, K: 67, r: 3, alpha: 0.5, beta: 1, bias: true },
];

// Block rows are whole blocks: K = 64 (two Q8_0 blocks) and 256 (one Q4_K super-block).
const blockCases = (K: number): Case[] => [
  { M: 7, N: 67, K, r: 3, alpha: 0.5, beta: 0, bias: true },
  { M: 70, N: 67, K, r: 16, alpha: 1, beta: 1, bias: false },
];

const SCHEDULES: Schedule[] = ['direct', 'tiled', 'vec4'];

describe('matmul X W^T with the LoRA epilogue (s * u B^T before the store)', () => {
  for (const schedule of SCHEDULES) {
    for (const format of ['f32', 'bf16', 'f16'] as const) {
      it(`${schedule} ${format}: one product matches alpha X W^T + beta Y + bias + s u B^T`, async () => {
        for (const c of FLOAT_CASES) expect(await fusedCase(schedule, format, c)).toEqual([entryOf(schedule, format, c.bias)]);
      });
    }
    for (const [format, K] of [
      ['q8_0', 64],
      ['q4_k', 256],
    ] as const) {
      it(`${schedule} ${format}: the epilogue on block-format weights`, async () => {
        for (const c of blockCases(K)) expect(await fusedCase(schedule, format, c)).toEqual([entryOf(schedule, format, c.bias)]);
      });
    }
  }

  it('takes u, B and Y at any 4-byte offset and leaves the rest of Y alone', async () => {
    const [M, N, K, r, s] = [7, 67, 67, 3, 2];
    const x = randomArray(M * K, 81);
    const w = randomArray(N * K, 82);
    const u = randomArray(M * r, 83);
    const B = randomArray(N * r, 84);
    const bias = randomArray(N, 85);
    const pool = randomArray(2048, 86);
    const [uAt, bAt, biasAt, yAt] = [37, 37 + M * r + 5, 1501, 67];
    pool.set(u, uAt);
    pool.set(B, bAt);
    pool.set(bias, biasAt);
    const outputs = randomArray(M * N + 200, 87);
    const base = combineRef(matmulXWtRef(toF64(x), toF64(w), M, N, K), 1, 1, toF64(outputs.subarray(yAt, yAt + M * N)), toF64(bias));
    const expected = Float64Array.from(outputs);
    expected.set(loraEpilogueRef(base, toF64(u), toF64(B), M, N, r, s), yAt);
    const at = (buffer: Binding, element: number, count: number) => ({ buffer: buffer as GPUBuffer, offset: element * 4, size: count * 4 });
    for (const schedule of SCHEDULES) {
      const all = await checkOp(await testGpu(), {
        inputs: { x, w, pool },
        outputs: { y: outputs },
        run: (g, t) =>
          matmulXWt(
            g,
            { X: t.x, W: t.w, Y: at(t.y, yAt, M * N), bias: at(t.pool, biasAt, N) },
            { M, N, K },
            { beta: 1, schedule, lora: { u: at(t.pool, uAt, M * r), B: at(t.pool, bAt, N * r), r, scaling: s } },
          ),
        expected: { y: { values: expected, atol: 2e-5, rtol: 1e-4 } },
      });
      expect(all.y.subarray(0, yAt)).toEqual(outputs.subarray(0, yAt));
      expect(all.y.subarray(yAt + M * N)).toEqual(outputs.subarray(yAt + M * N));
    }
  });

  it('refuses a rank that is no whole number and a u binding too small for M x r', async () => {
    const gpu = await testGpu();
    const buffer = gpu.createBuffer(4096, 'operands');
    const Y = gpu.createBuffer(4096, 'Y');
    try {
      const t = { X: buffer, W: buffer, Y };
      expect(() => matmulXWt(gpu, t, { M: 2, N: 3, K: 4 }, { lora: { u: buffer, B: buffer, r: 0, scaling: 1 } })).toThrow(/rank/);
      const u = { buffer, offset: 0, size: 4 * 5 };
      expect(() => matmulXWt(gpu, t, { M: 2, N: 3, K: 4 }, { lora: { u, B: buffer, r: 3, scaling: 1 } })).toThrow(/lora\.u needs 24 bytes/);
    } finally {
      buffer.destroy();
      Y.destroy();
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import type { Binding, Gpu } from '../../src/gpu/context';
import { matmulDyTX, matmulDyW, type MatmulDims, type MatmulOptions, matmulXWt } from '../../src/kernels/matmul';
import { splitCount } from '../../src/kernels/matmul-vec4';
import { testGpu, testGpuWithLimits } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type OpCase } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { combineRef, matmulDyTXRef, matmulDyWRef, matmulXWtRef } from '../reference/matmul';
import { roundAllTo } from '../reference/weight-rounding';

type Layout = 'XWt' | 'DyW' | 'DyTX';
type Shape = [number, number, number];
const TOL = { atol: 2e-5, rtol: 1e-4 };

/** Element counts of (first input, second input, output) for each layout. */
function sizes(layout: Layout, [M, N, K]: Shape): [number, number, number] {
  if (layout === 'XWt') return [M * K, N * K, M * N];
  if (layout === 'DyW') return [M * N, N * K, M * K];
  return [M * N, M * K, N * K];
}

function reference(layout: Layout, a: Float64Array, b: Float64Array, [M, N, K]: Shape): Float64Array {
  if (layout === 'XWt') return matmulXWtRef(a, b, M, N, K);
  if (layout === 'DyW') return matmulDyWRef(a, b, M, N, K);
  return matmulDyTXRef(a, b, M, N, K);
}

function product(gpu: Gpu, layout: Layout, a: Binding, b: Binding, c: Binding, d: MatmulDims, opts: MatmulOptions, bias?: Binding): void {
  if (layout === 'XWt') matmulXWt(gpu, { X: a, W: b, Y: c, bias }, d, opts);
  else if (layout === 'DyW') matmulDyW(gpu, { dY: a, W: b, dX: c }, d, opts);
  else matmulDyTX(gpu, { dY: a, X: b, dW: c }, d, opts);
}

/** Entry points recorded while `run` records. */
function recorded(gpu: Gpu, run: () => void): string[] {
  const entries: string[] = [];
  const stop = gpu.observeDispatches((d) => entries.push(d.kernel.name));
  try {
    run();
  } finally {
    stop();
  }
  return entries;
}

interface Variant {
  alpha?: number;
  beta?: number;
  withBias?: boolean;
  splitK?: number;
}

/** One product on the vec4 schedule; beta = 0 must not read the output, which starts as NaN. */
function productCase(layout: Layout, shape: Shape, { alpha = 1, beta = 0, withBias = false, splitK }: Variant, seen: string[]): OpCase {
  const [na, nb, nc] = sizes(layout, shape);
  const [M, N, K] = shape;
  const a = randomArray(na, 11);
  const b = randomArray(nb, 12);
  const old = beta === 0 ? undefined : randomArray(nc, 13);
  const bias = withBias ? randomArray(N, 14) : undefined;
  return {
    inputs: { a, b, ...(bias && { bias }) },
    outputs: { c: old ?? nc },
    run: (gpu, t) =>
      seen.push(
        ...recorded(gpu, () => product(gpu, layout, t.a, t.b, t.c, { M, N, K }, { alpha, beta, schedule: 'vec4', splitK }, bias && t.bias)),
      ),
    expected: {
      c: { values: combineRef(reference(layout, toF64(a), toF64(b), shape), alpha, beta, old && toF64(old), bias && toF64(bias)), ...TOL },
    },
  };
}

// M = 7 and 70 (part of a tile, several tiles), N = 67 (not a multiple of 4: the vector path's ragged
// edge), K = 67 (no row starts on a vector boundary), 64, 72 and 128 (every row does), LoRA-shaped
// r = 3 on either side, and a single element.
const SHAPES: Shape[] = [
  [7, 67, 67],
  [70, 67, 64],
  [70, 130, 72],
  [7, 67, 128],
  [67, 3, 35],
  [7, 35, 3],
  [1, 1, 1],
];

describe('matmul vec4 schedule', () => {
  for (const layout of ['XWt', 'DyW', 'DyTX'] as Layout[]) {
    const variants: [string, Variant, Shape[]][] = [
      ['overwrites (beta = 0) without reading the output', {}, SHAPES],
      ['scales and accumulates (alpha 0.5, beta 1)', { alpha: 0.5, beta: 1 }, SHAPES],
      ['scales and accumulates (alpha -2, beta 0.25)', { alpha: -2, beta: 0.25 }, [SHAPES[0], SHAPES[2]]],
    ];
    for (const [name, variant, shapes] of variants) {
      it(`${layout} ${name}`, async () => {
        const gpu = await testGpu();
        const seen: string[] = [];
        for (const shape of shapes) await checkOp(gpu, productCase(layout, shape, { ...variant, splitK: 1 }, seen));
        expect(seen.every((entry) => entry.startsWith('matmul_vec4_'))).toBe(true);
      });
    }
  }

  it('XWt adds the bias (overwriting and accumulating)', async () => {
    const gpu = await testGpu();
    const seen: string[] = [];
    await checkOp(gpu, productCase('XWt', [7, 67, 67], { withBias: true }, seen));
    await checkOp(gpu, productCase('XWt', [70, 130, 64], { alpha: 0.5, beta: 1, withBias: true }, seen));
    expect(seen).toEqual(['matmul_vec4_forward_bias', 'matmul_vec4_forward_bias']);
  });

  it('covers more output tiles (and split-K slices) than one grid dimension allows', async () => {
    // A device that claims 3 workgroups per dimension sends 7 tiles (or 2 x 5 slices) through a flattened grid.
    const gpu = await testGpuWithLimits({ maxComputeWorkgroupsPerDimension: 3 });
    expect(gpu.grid(7)).toEqual([3, 3]);
    const seen: string[] = [];
    await checkOp(gpu, productCase('XWt', [6 * 64 + 7, 2, 3], {}, seen));
    await checkOp(gpu, productCase('DyTX', [1000, 67, 3], { splitK: 5 }, seen));
    expect(seen).toEqual(['matmul_vec4_forward', 'matmul_vec4_backward_weight_split', 'matmul_vec4_split_sum']);
  });

  it('is the default only where gpu.gpuSchedules is true', async () => {
    const gpu = await testGpu();
    const b = gpu.createBuffer(64, 'b');
    const c = gpu.createBuffer(64, 'c');
    const run = () => matmulXWt(gpu, { X: b, W: b, Y: c }, { M: 2, N: 2, K: 2 });
    const before = gpu.schedules;
    try {
      gpu.schedules = 'gpu';
      expect(recorded(gpu, run)).toEqual(['matmul_vec4_forward']);
      gpu.schedules = 'cpu';
      expect(recorded(gpu, run)).toEqual(['matmul_forward_direct']);
      await gpu.readF32(c, 4);
    } finally {
      gpu.schedules = before;
      b.destroy();
      c.destroy();
    }
  });
});

describe('matmul vec4 schedule at binding offsets', () => {
  // After matmul.ts rounds a binding down to the 256-byte alignment, element 64 + 4 is offset 4 (vector
  // aligned) and 64 + 3 is offset 3 (every vector load falls back to elements); with K = 64 the rows
  // stay aligned, with K = 67 they do not. Inputs share one pool, outputs another, around values that
  // must survive.
  const cases: [Layout, Shape, number][] = [
    ['XWt', [7, 67, 64], 4],
    ['XWt', [7, 67, 64], 3],
    ['XWt', [70, 35, 67], 4],
    ['DyW', [7, 64, 68], 4],
    ['DyW', [7, 67, 35], 3],
    ['DyTX', [70, 8, 64], 4],
    ['DyTX', [70, 3, 67], 3],
  ];
  for (const [layout, shape, shift] of cases) {
    it(`${layout} ${shape.join('x')} with operands ${shift} elements past an aligned start`, async () => {
      const gpu = await testGpu();
      const [na, nb, nc] = sizes(layout, shape);
      const [M, N, K] = shape;
      const a = randomArray(na, 71);
      const b = randomArray(nb, 72);
      const aStart = 64 + shift;
      const bStart = 64 * Math.ceil((aStart + na) / 64) + 64 + shift;
      const cStart = 128 + shift;
      const pool = randomArray(bStart + nb + 37, 73);
      pool.set(a, aStart);
      pool.set(b, bStart);
      const outputs = randomArray(cStart + nc + 29, 74);
      const expected = Float64Array.from(outputs);
      expected.set(combineRef(reference(layout, toF64(a), toF64(b), shape), 0.5, 1, toF64(outputs.subarray(cStart, cStart + nc))), cStart);
      const at = (buffer: Binding, element: number, count: number) => ({
        buffer: buffer as GPUBuffer,
        offset: element * 4,
        size: count * 4,
      });
      const seen: string[] = [];
      await checkOp(gpu, {
        inputs: { pool },
        outputs: { c: outputs },
        run: (g, t) => {
          const opts = { alpha: 0.5, beta: 1, schedule: 'vec4' as const, splitK: 1 };
          seen.push(
            ...recorded(g, () =>
              product(g, layout, at(t.pool, aStart, na), at(t.pool, bStart, nb), at(t.c, cStart, nc), { M, N, K }, opts),
            ),
          );
        },
        expected: { c: { values: expected, ...TOL } },
      });
      expect(seen.length).toBe(1);
      expect(seen[0]).toMatch(/^matmul_vec4_/);
    });
  }
});

type Format16 = 'bf16' | 'f16';

function packedCase(layout: 'XWt' | 'DyW', shape: Shape, format: Format16, bias: boolean, wStart = 0): OpCase {
  const [M, N, K] = shape;
  const x = randomArray(layout === 'XWt' ? M * K : M * N, 51);
  const w = randomArray(N * K, 52);
  const biasValues = bias ? randomArray(N, 53) : undefined;
  const pool = new Float32Array(wStart + N * K + 3);
  pool.set(w, wStart);
  const w64 = roundAllTo(format, w);
  const ref = layout === 'XWt' ? matmulXWtRef(toF64(x), w64, M, N, K) : matmulDyWRef(toF64(x), w64, M, N, K);
  return {
    inputs: { x, w: packWeights(pool, format), ...(biasValues && { bias: biasValues }) },
    outputs: { c: layout === 'XWt' ? M * N : M * K },
    run: (gpu, t) => {
      const W = { buffer: t.w as GPUBuffer, offset: wStart * 2, size: N * K * 2 };
      const opts = { schedule: 'vec4' as const, format };
      const entries = recorded(gpu, () =>
        layout === 'XWt'
          ? matmulXWt(gpu, { X: t.x, W, Y: t.c, bias: biasValues && t.bias }, { M, N, K }, opts)
          : matmulDyW(gpu, { dY: t.x, W, dX: t.c }, { M, N, K }, opts),
      );
      expect(entries[0]).toMatch(/^matmul_vec4_/);
    },
    expected: { c: { values: combineRef(ref, 1, 0, undefined, biasValues && toF64(biasValues)), ...TOL } },
  };
}

describe('matmul vec4 schedule with 16-bit weights (bf16 and f16 packed two per u32)', () => {
  for (const format of ['bf16', 'f16'] as const) {
    it(`${format}: X W^T, X W^T + bias and dY W match the float64 product of the rounded weights`, async () => {
      const gpu = await testGpu();
      for (const shape of [
        [7, 67, 67],
        [70, 130, 64],
        [5, 33, 17],
        [1, 1, 1],
      ] as Shape[]) {
        await checkOp(gpu, packedCase('XWt', shape, format, false));
        await checkOp(gpu, packedCase('XWt', shape, format, true));
        await checkOp(gpu, packedCase('DyW', shape, format, false));
      }
    });
    it(`${format}: W at an odd element offset (2 bytes into a word)`, async () => {
      const gpu = await testGpu();
      await checkOp(gpu, packedCase('XWt', [7, 67, 64], format, false, 301));
      await checkOp(gpu, packedCase('DyW', [7, 64, 67], format, false, 301));
    });
  }
});

describe('matmul vec4 split-K for dW = dY^T X', () => {
  // r = 3 output rows (a LoRA dA), reductions over 70 and 1000 tokens; forced split counts, including
  // more than the depth has slices for, and the count chosen from the shape.
  const cases: [Shape, number | undefined][] = [
    [[70, 3, 67], 2],
    [[70, 3, 64], 7],
    [[1000, 3, 67], 3],
    [[1000, 3, 128], undefined],
    [[1000, 67, 3], 5],
    [[17, 3, 67], 4],
  ];
  let seen: string[] = [];
  afterEach(() => {
    seen = [];
  });
  for (const [shape, splitK] of cases) {
    it(`${shape.join('x')} in ${splitK ?? 'shape-chosen'} splits overwrites and accumulates`, async () => {
      const gpu = await testGpu();
      await checkOp(gpu, productCase('DyTX', shape, { splitK }, seen));
      await checkOp(gpu, productCase('DyTX', shape, { splitK, alpha: 0.5, beta: 1 }, seen));
      await checkOp(gpu, productCase('DyTX', shape, { splitK, alpha: -2, beta: 0.25 }, seen));
      expect(seen).toEqual(Array(3).fill(['matmul_vec4_backward_weight_split', 'matmul_vec4_split_sum']).flat());
    });
  }

  it('chooses splits from the shape: long reductions over few tiles only', () => {
    expect(splitCount(1, 3 * 128, 1000)).toBe(3);
    expect(splitCount(9, 16 * 576, 2048)).toBe(8);
    expect(splitCount(1, 3 * 67, 70)).toBe(1);
    expect(splitCount(300, 64 * 64 * 300, 100000)).toBe(1);
  });

  it('sums the splits in a fixed order: the same result bit for bit on every run', async () => {
    const gpu = await testGpu();
    const runs: Float32Array[] = [];
    for (let i = 0; i < 2; i++) runs.push((await checkOp(gpu, productCase('DyTX', [1000, 3, 67], { splitK: 6 }, seen))).c);
    expect(runs[1]).toEqual(runs[0]);
  });
});

import { describe, expect, it } from 'vitest';
import type { Binding } from '../../src/gpu/context';
import { matmulDyW, matmulXWt } from '../../src/kernels/matmul';
import { testGpu, testGpuWithLimits } from '../helpers/gpu';
import { type Layout, product, productCase, recorded, reference, type Shape, sizes, TOL, type Variant } from '../helpers/matmul-vec4-cases';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type OpCase } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { combineRef, matmulDyWRef, matmulXWtRef } from '../reference/matmul';
import { roundAllTo } from '../reference/weight-rounding';

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

describe('matmul vec4 schedule writing a column block', () => {
  it('XWt with outStride writes only its columns of a wider output', async () => {
    const [M, N, K, stride, col0] = [70, 35, 64, 53, 11];
    const x = randomArray(M * K, 31);
    const w = randomArray(N * K, 32);
    const old = randomArray(M * stride, 33);
    const ref = matmulXWtRef(toF64(x), toF64(w), M, N, K);
    const expected = toF64(old);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expected[m * stride + col0 + n] = ref[m * N + n];
    await checkOp(await testGpu(), {
      inputs: { x, w },
      outputs: { y: old },
      run: (gpu, t) => {
        const Y = { buffer: t.y as GPUBuffer, offset: col0 * 4, size: (M * stride - col0) * 4 };
        expect(recorded(gpu, () => matmulXWt(gpu, { X: t.x, W: t.w, Y }, { M, N, K, outStride: stride }, { schedule: 'vec4' }))).toEqual([
          'matmul_vec4_forward',
        ]);
      },
      expected: { y: { values: expected, ...TOL } },
    });
  });
});

describe('matmul vec4 schedule fallback', () => {
  it('takes the tiled schedule when an operand cannot be bound as whole vec4s inside its buffer', async () => {
    const gpu = await testGpu();
    const [M, N, K] = [7, 5, 3];
    const x = randomArray(M * K, 81);
    const w = randomArray(N * K, 82);
    // 84 and 60 bytes: buffers not made by Gpu.createBuffer (which rounds sizes up to 16 bytes).
    const raw = (data: Float32Array) => {
      const buffer = gpu.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      gpu.device.queue.writeBuffer(buffer, 0, data);
      return buffer;
    };
    const [X, W] = [raw(x), raw(w)];
    try {
      await checkOp(gpu, {
        outputs: { y: M * N },
        run: (g, t) =>
          expect(recorded(g, () => matmulXWt(g, { X, W, Y: t.y }, { M, N, K }, { schedule: 'vec4' }))).toEqual(['matmul_forward']),
        expected: { y: { values: matmulXWtRef(toF64(x), toF64(w), M, N, K), ...TOL } },
      });
    } finally {
      X.destroy();
      W.destroy();
    }
  });
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

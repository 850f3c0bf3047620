/**
 * The subgroup matmul schedule (shaders/matmul-subgroup.wgsl) forced on the test device against the
 * float64 references, outputs NaN-filled where beta = 0. SwiftShader reports subgroups of 4, so the
 * default layout there is one row group of 4 column lanes; laneColumns 2 and 1 run the layouts of
 * several row groups per subgroup (the ones 32-lane GPUs take) on the same lanes.
 */
import { describe, expect, it } from 'vitest';
import { type Binding, Gpu } from '../../src/gpu/context';
import { dequantize } from '../../src/gguf/quants';
import { matmulDyTX, matmulDyW, matmulXWt } from '../../src/kernels/matmul';
import { recordSubgroupProduct, subgroupMatmulSupported } from '../../src/kernels/matmul-subgroup';
import { asWords } from '../../src/model/weight-format';
import { testGpu } from '../helpers/gpu';
import { type Layout, product, recorded, reference, type Shape, sizes, TOL, type Variant } from '../helpers/matmul-vec4-cases';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type OpCase } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { randomBlocks } from '../helpers/random-blocks';
import { combineRef, matmulDyWRef, matmulXWtRef } from '../reference/matmul';
import { roundAllTo } from '../reference/weight-rounding';

const SUBGROUP = { schedule: 'subgroup' as const };

// M = 7 and 70 (part of a tile, several tiles), N = 67 (ragged columns), K = 67 (no row on a vector
// boundary), 72 and 128 (every row on one), LoRA-shaped r = 3 on either side, a single element.
const SHAPES: Shape[] = [
  [7, 67, 67],
  [70, 67, 72],
  [70, 130, 128],
  [7, 67, 128],
  [67, 3, 35],
  [7, 35, 3],
  [1, 1, 1],
];

/** One product through matmul.ts on the subgroup schedule; the entries it recorded go to `seen`. */
function subgroupCase(layout: Layout, shape: Shape, { alpha = 1, beta = 0, withBias = false }: Variant, seen: string[]): OpCase {
  const [na, nb, nc] = sizes(layout, shape);
  const [M, N, K] = shape;
  const a = randomArray(na, 21);
  const b = randomArray(nb, 22);
  const old = beta === 0 ? undefined : randomArray(nc, 23);
  const bias = withBias ? randomArray(N, 24) : undefined;
  return {
    inputs: { a, b, ...(bias && { bias }) },
    outputs: { c: old ?? nc },
    run: (gpu, t) =>
      seen.push(...recorded(gpu, () => product(gpu, layout, t.a, t.b, t.c, { M, N, K }, { alpha, beta, ...SUBGROUP }, bias && t.bias))),
    expected: {
      c: { values: combineRef(reference(layout, toF64(a), toF64(b), shape), alpha, beta, old && toF64(old), bias && toF64(bias)), ...TOL },
    },
  };
}

const ENTRIES: Record<Layout, string> = {
  XWt: 'matmul_forward',
  DyW: 'matmul_backward_input',
  DyTX: 'matmul_backward_weight',
};

/** The same product recorded straight through the wrapper with `laneColumns` column groups (bindings from offset 0). */
function laneCase(layout: Layout, shape: Shape, laneColumns: number, alpha: number, beta: number): OpCase {
  const [na, nb, nc] = sizes(layout, shape);
  const [M, N, K] = shape;
  const a = randomArray(na, 31);
  const b = randomArray(nb, 32);
  const old = beta === 0 ? undefined : randomArray(nc, 33);
  const [rows, cols, depth, lda, ldb] = layout === 'XWt' ? [M, N, K, K, K] : layout === 'DyW' ? [M, K, N, N, K] : [N, K, M, N, K];
  const at = (binding: Binding) => ({ binding, offset: 0 });
  return {
    inputs: { a, b },
    outputs: { c: old ?? nc },
    run: (gpu, t) => {
      const d = { a: at(t.a), b: at(t.b), c: at(t.c), rows, cols, depth, lda, ldb, ldc: cols, alpha, beta, format: 'f32' as const };
      const entries = recorded(gpu, () => expect(recordSubgroupProduct(gpu, ENTRIES[layout], { ...d, laneColumns })).toBe(true));
      expect(entries).toEqual([ENTRIES[layout].replace(/^matmul_/, 'matmul_subgroup_')]);
    },
    expected: { c: { values: combineRef(reference(layout, toF64(a), toF64(b), shape), alpha, beta, old && toF64(old)), ...TOL } },
  };
}

describe('matmul subgroup schedule', () => {
  it('runs here: the test device has subgroups of a size the layout covers', async () => {
    const gpu = await testGpu();
    expect(subgroupMatmulSupported(gpu)).toBe(true);
  });

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
        for (const shape of shapes) await checkOp(gpu, subgroupCase(layout, shape, variant, seen));
        expect(seen).toEqual(shapes.map(() => ENTRIES[layout].replace(/^matmul_/, 'matmul_subgroup_')));
      });
    }
  }

  it('XWt adds the bias (overwriting and accumulating)', async () => {
    const gpu = await testGpu();
    const seen: string[] = [];
    await checkOp(gpu, subgroupCase('XWt', [7, 67, 67], { withBias: true }, seen));
    await checkOp(gpu, subgroupCase('XWt', [70, 130, 72], { alpha: 0.5, beta: 1, withBias: true }, seen));
    expect(seen).toEqual(['matmul_subgroup_forward_bias', 'matmul_subgroup_forward_bias']);
  });

  // With subgroups of 4, laneColumns 4 is the default layout (1 row group), 2 gives 2 row groups of 2
  // column lanes and 1 gives 4 row groups of one: lanes shuffle from different source lanes at once.
  for (const laneColumns of [4, 2, 1]) {
    it(`every product with ${laneColumns} column lane(s) per row group`, async () => {
      const gpu = await testGpu();
      for (const layout of ['XWt', 'DyW', 'DyTX'] as Layout[]) {
        await checkOp(gpu, laneCase(layout, [70, 67, 67], laneColumns, 1, 0));
        await checkOp(gpu, laneCase(layout, [7, 130, 72], laneColumns, 0.5, 1));
      }
    });
  }

  it('gives the same bits on every run (fixed summation order, no atomics)', async () => {
    const gpu = await testGpu();
    const [M, N, K] = [70, 67, 128];
    const x = randomArray(M * K, 35);
    const w = randomArray(N * K, 36);
    const runs: Float32Array[] = [];
    for (let i = 0; i < 2; i++) {
      const out = await checkOp(gpu, {
        inputs: { x, w },
        outputs: { y: M * N },
        run: (g, t) => matmulXWt(g, { X: t.x, W: t.w, Y: t.y }, { M, N, K }, SUBGROUP),
        expected: { y: { values: matmulXWtRef(toF64(x), toF64(w), M, N, K), ...TOL } },
      });
      runs.push(out.y);
    }
    expect(new Uint32Array(runs[1].buffer)).toEqual(new Uint32Array(runs[0].buffer));
  });

  it('refuses a lane width that is no power of two from 1 to 16', async () => {
    const gpu = await testGpu();
    const buffer = gpu.createBuffer(64, 'x');
    try {
      const op = { binding: buffer, offset: 0 };
      const d = { a: op, b: op, c: op, rows: 1, cols: 1, depth: 1, lda: 1, ldb: 1, ldc: 1, alpha: 1, beta: 0, format: 'f32' as const };
      for (const laneColumns of [3, 32, 0]) {
        expect(() => recordSubgroupProduct(gpu, 'matmul_forward', { ...d, laneColumns })).toThrow(/laneColumns must be a power of two/);
      }
    } finally {
      buffer.destroy();
    }
  });
});

describe('matmul subgroup schedule at binding offsets and column blocks', () => {
  // After matmul.ts rounds a binding down to the 256-byte alignment, element 64 + 4 is offset 4 (B's
  // vector loads aligned where K is a multiple of 4) and 64 + 3 is offset 3 (element by element).
  const cases: [Layout, Shape, number][] = [
    ['XWt', [7, 67, 64], 4],
    ['XWt', [70, 35, 67], 3],
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
      const a = randomArray(na, 41);
      const b = randomArray(nb, 42);
      const aStart = 64 + shift;
      const bStart = 64 * Math.ceil((aStart + na) / 64) + 64 + shift;
      const cStart = 128 + shift;
      const pool = randomArray(bStart + nb + 37, 43);
      pool.set(a, aStart);
      pool.set(b, bStart);
      const outputs = randomArray(cStart + nc + 29, 44);
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
          const opts = { alpha: 0.5, beta: 1, ...SUBGROUP };
          seen.push(
            ...recorded(g, () =>
              product(g, layout, at(t.pool, aStart, na), at(t.pool, bStart, nb), at(t.c, cStart, nc), { M, N, K }, opts),
            ),
          );
        },
        expected: { c: { values: expected, ...TOL } },
      });
      expect(seen).toEqual([ENTRIES[layout].replace(/^matmul_/, 'matmul_subgroup_')]);
    });
  }

  it('XWt with outStride writes only its columns of a wider output', async () => {
    const [M, N, K, stride, col0] = [70, 35, 64, 53, 11];
    const x = randomArray(M * K, 51);
    const w = randomArray(N * K, 52);
    const old = randomArray(M * stride, 53);
    const ref = matmulXWtRef(toF64(x), toF64(w), M, N, K);
    const expected = toF64(old);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expected[m * stride + col0 + n] = ref[m * N + n];
    await checkOp(await testGpu(), {
      inputs: { x, w },
      outputs: { y: old },
      run: (gpu, t) => {
        const Y = { buffer: t.y as GPUBuffer, offset: col0 * 4, size: (M * stride - col0) * 4 };
        expect(recorded(gpu, () => matmulXWt(gpu, { X: t.x, W: t.w, Y }, { M, N, K, outStride: stride }, SUBGROUP))).toEqual([
          'matmul_subgroup_forward',
        ]);
      },
      expected: { y: { values: expected, ...TOL } },
    });
  });
});

function packedCase(layout: 'XWt' | 'DyW', shape: Shape, format: 'bf16' | 'f16', bias: boolean, wStart = 0): OpCase {
  const [M, N, K] = shape;
  const x = randomArray(layout === 'XWt' ? M * K : M * N, 61);
  const w = randomArray(N * K, 62);
  const biasValues = bias ? randomArray(N, 63) : undefined;
  const pool = new Float32Array(wStart + N * K + 3);
  pool.set(w, wStart);
  const w64 = roundAllTo(format, w);
  const ref = layout === 'XWt' ? matmulXWtRef(toF64(x), w64, M, N, K) : matmulDyWRef(toF64(x), w64, M, N, K);
  return {
    inputs: { x, w: packWeights(pool, format), ...(biasValues && { bias: biasValues }) },
    outputs: { c: layout === 'XWt' ? M * N : M * K },
    run: (gpu, t) => {
      const W = { buffer: t.w as GPUBuffer, offset: wStart * 2, size: N * K * 2 };
      const opts = { ...SUBGROUP, format };
      const entries = recorded(gpu, () =>
        layout === 'XWt'
          ? matmulXWt(gpu, { X: t.x, W, Y: t.c, bias: biasValues && t.bias }, { M, N, K }, opts)
          : matmulDyW(gpu, { dY: t.x, W, dX: t.c }, { M, N, K }, opts),
      );
      expect(entries).toEqual([layout === 'DyW' ? 'matmul_subgroup_backward_input' : `matmul_subgroup_forward${bias ? '_bias' : ''}`]);
    },
    expected: { c: { values: combineRef(ref, 1, 0, undefined, biasValues && toF64(biasValues)), ...TOL } },
  };
}

describe('matmul subgroup schedule with 16-bit weights (bf16 and f16 packed two per u32)', () => {
  for (const format of ['bf16', 'f16'] as const) {
    it(`${format}: X W^T, X W^T + bias and dY W match the float64 product of the rounded weights`, async () => {
      const gpu = await testGpu();
      for (const shape of [
        [7, 67, 67],
        [70, 130, 72],
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

/** The test device seen without its `subgroups` feature. */
async function gpuWithoutSubgroups(): Promise<Gpu> {
  const shared = await testGpu();
  const features = new Set([...shared.device.features].filter((f) => f !== 'subgroups'));
  const device = new Proxy(shared.device, {
    get(target, prop) {
      if (prop === 'features') return features;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return new Gpu(device);
}

describe('matmul subgroup schedule fallback', () => {
  it('takes vec4 on a device without the subgroups feature', async () => {
    const gpu = await gpuWithoutSubgroups();
    expect(gpu.hasSubgroups).toBe(false);
    const seen: string[] = [];
    for (const layout of ['XWt', 'DyW', 'DyTX'] as Layout[]) await checkOp(gpu, subgroupCase(layout, [7, 67, 67], {}, seen));
    expect(seen).toEqual(['matmul_vec4_forward', 'matmul_vec4_backward_input', 'matmul_vec4_backward_weight']);
  });

  it('leaves a dY^T X product that vec4 splits over K to vec4 split-K (asked for, or chosen from the shape)', async () => {
    const gpu = await testGpu();
    const seen: string[] = [];
    await checkOp(gpu, subgroupCase('DyTX', [600, 3, 67], {}, seen));
    expect(seen).toEqual(['matmul_vec4_backward_weight_split', 'matmul_vec4_split_sum']);
    const [M, N, K] = [70, 3, 67];
    const dY = randomArray(M * N, 71);
    const X = randomArray(M * K, 72);
    await checkOp(gpu, {
      inputs: { dY, X },
      outputs: { dW: N * K },
      run: (g, t) =>
        expect(recorded(g, () => matmulDyTX(g, { dY: t.dY, X: t.X, dW: t.dW }, { M, N, K }, { ...SUBGROUP, splitK: 2 }))).toEqual([
          'matmul_vec4_backward_weight_split',
          'matmul_vec4_split_sum',
        ]),
      expected: { dW: { values: reference('DyTX', toF64(dY), toF64(X), [M, N, K]), ...TOL } },
    });
  });

  it('takes the tiled schedule for a quantized weight format', async () => {
    const gpu = await testGpu();
    const [M, N, K] = [7, 67, 64];
    const { bytes, type } = randomBlocks('q8_0', N * K, 81);
    const w64 = toF64(dequantize(type, bytes, N * K));
    const x = randomArray(M * K, 82);
    await checkOp(gpu, {
      inputs: { x, w: asWords(bytes) },
      outputs: { y: M * N },
      run: (g, t) =>
        expect(recorded(g, () => matmulXWt(g, { X: t.x, W: t.w, Y: t.y }, { M, N, K }, { ...SUBGROUP, format: 'q8_0' }))).toEqual([
          'matmul_forward',
        ]),
      expected: { y: { values: matmulXWtRef(toF64(x), w64, M, N, K), atol: 1e-4, rtol: 1e-4 } },
    });
  });

  it('takes the tiled schedule when B cannot be bound as whole vec4s inside its buffer', async () => {
    const gpu = await testGpu();
    const [M, N, K] = [7, 5, 3];
    const x = randomArray(M * K, 91);
    const w = randomArray(N * K, 92);
    // A 60-byte buffer not made by Gpu.createBuffer (which rounds sizes up to 16 bytes): vec4 cannot bind it either.
    const W = gpu.device.createBuffer({ size: w.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    gpu.device.queue.writeBuffer(W, 0, w);
    try {
      await checkOp(gpu, {
        inputs: { x },
        outputs: { y: M * N },
        run: (g, t) => expect(recorded(g, () => matmulXWt(g, { X: t.x, W, Y: t.y }, { M, N, K }, SUBGROUP))).toEqual(['matmul_forward']),
        expected: { y: { values: matmulXWtRef(toF64(x), toF64(w), M, N, K), ...TOL } },
      });
    } finally {
      W.destroy();
    }
  });

  it('is never a default: GPU schedules take vec4, CPU schedules direct, unless the Gpu forces a matmul schedule', async () => {
    const gpu = await testGpu();
    const b = gpu.createBuffer(64, 'b');
    const c = gpu.createBuffer(64, 'c');
    const run = () => matmulDyW(gpu, { dY: b, W: b, dX: c }, { M: 2, N: 2, K: 2 });
    const before = gpu.schedules;
    try {
      gpu.schedules = 'gpu';
      expect(recorded(gpu, run)).toEqual(['matmul_vec4_backward_input']);
      gpu.schedules = 'cpu';
      expect(recorded(gpu, run)).toEqual(['matmul_backward_input_direct']);
      // Unless the whole model is forced onto it (golden --matmul subgroup), over either kind.
      gpu.matmulSchedule = 'subgroup';
      expect(recorded(gpu, run)).toEqual(['matmul_subgroup_backward_input']);
      gpu.matmulSchedule = 'tiled';
      expect(recorded(gpu, run)).toEqual(['matmul_backward_input']);
      await gpu.readF32(c, 4);
    } finally {
      gpu.schedules = before;
      gpu.matmulSchedule = null;
      b.destroy();
      c.destroy();
    }
  });
});

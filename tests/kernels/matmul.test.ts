import { describe, expect, it } from 'vitest';
import { type Binding, Gpu } from '../../src/gpu/context';
import { matmulDyTX, matmulDyW, type MatmulDims, type MatmulOptions, matmulXWt } from '../../src/kernels/matmul';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp, type OpCase } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { combineRef, matmulDyTXRef, matmulDyWRef, matmulXWtRef } from '../reference/matmul';
import { roundAllTo } from '../reference/weight-rounding';

type Layout = 'XWt' | 'DyW' | 'DyTX';
type Shape = [number, number, number];

/** Element counts of (first input, second input, output) for each layout. */
function sizes(layout: Layout, [M, N, K]: Shape): [number, number, number] {
  if (layout === 'XWt') return [M * K, N * K, M * N];
  if (layout === 'DyW') return [M * N, N * K, M * K];
  return [M * N, M * K, N * K];
}

function reference(layout: Layout, a: Float32Array, b: Float32Array, [M, N, K]: Shape): Float64Array {
  if (layout === 'XWt') return matmulXWtRef(toF64(a), toF64(b), M, N, K);
  if (layout === 'DyW') return matmulDyWRef(toF64(a), toF64(b), M, N, K);
  return matmulDyTXRef(toF64(a), toF64(b), M, N, K);
}

/** Calls the layout's wrapper with a, b the first and second input and c the output. */
function product(gpu: Gpu, layout: Layout, a: Binding, b: Binding, c: Binding, d: MatmulDims, opts: MatmulOptions, bias?: Binding): void {
  if (layout === 'XWt') matmulXWt(gpu, { X: a, W: b, Y: c, bias }, d, opts);
  else if (layout === 'DyW') matmulDyW(gpu, { dY: a, W: b, dX: c }, d, opts);
  else matmulDyTX(gpu, { dY: a, X: b, dW: c }, d, opts);
}

interface Variant {
  alpha?: number;
  beta?: number;
  withBias?: boolean;
  schedule?: 'tiled' | 'direct';
}

/** One product on random inputs; beta = 0 must not read the output, which starts as NaN. */
function productCase(layout: Layout, shape: Shape, { alpha = 1, beta = 0, withBias = false, schedule }: Variant): OpCase {
  const [na, nb, nc] = sizes(layout, shape);
  const [M, N, K] = shape;
  const a = randomArray(na, 11);
  const b = randomArray(nb, 12);
  const old = beta === 0 ? undefined : randomArray(nc, 13);
  const bias = withBias ? randomArray(N, 14) : undefined;
  return {
    inputs: { a, b, ...(bias && { bias }) },
    outputs: { c: old ?? nc },
    run: (gpu, t) => product(gpu, layout, t.a, t.b, t.c, { M, N, K }, { alpha, beta, schedule }, bias && t.bias),
    expected: {
      c: {
        values: combineRef(reference(layout, a, b, shape), alpha, beta, old && toF64(old), bias && toF64(bias)),
        atol: 2e-5,
        rtol: 1e-4,
      },
    },
  };
}

// Not multiples of the 64x64 tile or the 16-deep slice; the second spans several tiles each way;
// the last two are LoRA-shaped (r = 3 on either side).
const SHAPES: Shape[] = [
  [7, 35, 67],
  [70, 130, 67],
  [67, 3, 35],
  [7, 35, 3],
  [1, 1, 1],
];

// Both schedules on every device: workgroup-memory tiles (GPUs) and barrier-free blocks (CPUs).
const CASES: { name: string; layout: Layout; shapes: Shape[]; variant: Variant }[] = (['tiled', 'direct'] as const).flatMap((schedule) =>
  (['XWt', 'DyW', 'DyTX'] as Layout[]).flatMap((layout) => [
    { name: `${layout} ${schedule} overwrites (beta = 0) without reading the output`, layout, shapes: SHAPES, variant: { schedule } },
    {
      name: `${layout} ${schedule} scales and accumulates (alpha, beta)`,
      layout,
      shapes: SHAPES,
      variant: { alpha: 0.5, beta: 1, schedule },
    },
    {
      name: `${layout} ${schedule} scales and accumulates (alpha -2, beta 0.25)`,
      layout,
      shapes: [SHAPES[0]],
      variant: { alpha: -2, beta: 0.25, schedule },
    },
  ]),
);
CASES.push(
  { name: 'XWt tiled adds the bias', layout: 'XWt', shapes: [[7, 35, 67]], variant: { withBias: true, schedule: 'tiled' } },
  { name: 'XWt direct adds the bias', layout: 'XWt', shapes: [[7, 35, 67]], variant: { withBias: true, schedule: 'direct' } },
  { name: 'XWt adds the bias when accumulating', layout: 'XWt', shapes: [[70, 130, 67]], variant: { alpha: 0.5, beta: 1, withBias: true } },
);

describe('matmul kernels', () => {
  for (const { name, layout, shapes, variant } of CASES) {
    it(name, async () => {
      const gpu = await testGpu();
      for (const shape of shapes) await checkOp(gpu, productCase(layout, shape, variant));
    });
  }

  it('takes sub-range bindings at any 4-byte offset and leaves the rest alone', async () => {
    const gpu = await testGpu();
    const [M, N, K] = [7, 35, 67];
    const x = randomArray(M * K, 21);
    const w = randomArray(N * K, 22);
    const bias = randomArray(N, 23);
    // A buffer may not be read and written by one dispatch, so the inputs share one pool and Y another.
    const outputs = randomArray(1024, 25);
    const yStart = 67;
    const at = (buffer: Binding, element: number, count: number) => ({ buffer: buffer as GPUBuffer, offset: element * 4, size: count * 4 });
    const expected = Float64Array.from(outputs);
    expected.set(combineRef(matmulXWtRef(toF64(x), toF64(w), M, N, K), 1, 0, undefined, toF64(bias)), yStart);
    const pool = randomArray(4096, 24);
    // X 256-byte aligned, W, bias and Y not; Y surrounded by values that must survive.
    pool.set(x, 64);
    pool.set(w, 64 + M * K + 5);
    pool.set(bias, 3001);
    const all = await checkOp(gpu, {
      inputs: { inputs: pool },
      outputs: { y: outputs },
      run: (g, t) =>
        matmulXWt(
          g,
          { X: at(t.inputs, 64, M * K), W: at(t.inputs, 64 + M * K + 5, N * K), Y: at(t.y, yStart, M * N), bias: at(t.inputs, 3001, N) },
          { M, N, K },
        ),
      expected: { y: { values: expected, atol: 2e-5, rtol: 1e-4 } },
    });
    expect(all.y.subarray(0, yStart)).toEqual(outputs.subarray(0, yStart));
    expect(all.y.subarray(yStart + M * N)).toEqual(outputs.subarray(yStart + M * N));
  });

  it('XWt writes a column block of a wider output with outStride', async () => {
    const [M, N, K, stride, col0] = [5, 35, 67, 53, 11];
    const x = randomArray(M * K, 31);
    const w = randomArray(N * K, 32);
    const old = randomArray(M * stride, 33);
    const product = matmulXWtRef(toF64(x), toF64(w), M, N, K);
    const expected = toF64(old);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expected[m * stride + col0 + n] = product[m * N + n];
    await checkOp(await testGpu(), {
      inputs: { x, w },
      outputs: { y: old },
      run: (gpu, t) =>
        matmulXWt(
          gpu,
          { X: t.x, W: t.w, Y: { buffer: t.y as GPUBuffer, offset: col0 * 4, size: (M * stride - col0) * 4 } },
          { M, N, K, outStride: stride },
        ),
      expected: { y: { values: expected, atol: 2e-5, rtol: 1e-4 } },
    });
  });

  it('covers more output tiles than one grid dimension allows', async () => {
    const shared = await testGpu();
    // A real overflow needs M > 65535 * 64 rows (minutes on SwiftShader); a device that claims a
    // limit of 3 workgroups per dimension sends 7 tiles through the same flattened 3x3 grid.
    const limits: Record<string, number> = {};
    for (const key in shared.device.limits) limits[key] = (shared.device.limits as unknown as Record<string, number>)[key];
    limits.maxComputeWorkgroupsPerDimension = 3;
    const device = new Proxy(shared.device, {
      get(target, prop) {
        if (prop === 'limits') return limits;
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const gpu = new Gpu(device);
    expect(gpu.grid(7)).toEqual([3, 3]);
    const [M, N, K] = [6 * 64 + 7, 2, 3];
    const x = randomArray(M * K, 41);
    const w = randomArray(N * K, 42);
    const dy = randomArray(M * N, 43);
    await checkOp(gpu, {
      inputs: { x, w, dy },
      outputs: { y: M * N, dx: M * K },
      run: (g, t) => {
        matmulXWt(g, { X: t.x, W: t.w, Y: t.y }, { M, N, K }, { schedule: 'tiled' });
        matmulDyW(g, { dY: t.dy, W: t.w, dX: t.dx }, { M, N, K }, { schedule: 'tiled' });
      },
      expected: {
        y: { values: matmulXWtRef(toF64(x), toF64(w), M, N, K), atol: 2e-5, rtol: 1e-4 },
        dx: { values: matmulDyWRef(toF64(dy), toF64(w), M, N, K), atol: 2e-5, rtol: 1e-4 },
      },
    });
  });
});

type Format16 = 'bf16' | 'f16';

/**
 * X W^T (with or without bias) or dY W with W stored in a 16-bit format: the GPU reads the engine's
 * packed copy of W, the float64 reference reads W rounded to that format, so only f32 accumulation
 * separates them. Outputs start as NaN.
 */
function packedWeightCase(
  layout: 'XWt' | 'DyW',
  shape: Shape,
  format: Format16,
  o: { schedule: 'tiled' | 'direct'; bias?: boolean; wScale?: number },
): OpCase {
  const [M, N, K] = shape;
  const a = randomArray(layout === 'XWt' ? M * K : M * N, 51);
  const w = randomArray(N * K, 52).map((v) => v * (o.wScale ?? 1));
  const bias = o.bias ? randomArray(N, 53) : undefined;
  const w64 = roundAllTo(format, w);
  const product = layout === 'XWt' ? matmulXWtRef(toF64(a), w64, M, N, K) : matmulDyWRef(toF64(a), w64, M, N, K);
  const scale = o.wScale ?? 1;
  return {
    inputs: { a, w: packWeights(w, format), ...(bias && { bias }) },
    outputs: { c: layout === 'XWt' ? M * N : M * K },
    run: (gpu, t) =>
      layout === 'XWt'
        ? matmulXWt(gpu, { X: t.a, W: t.w, Y: t.c, bias: bias && t.bias }, { M, N, K }, { schedule: o.schedule, format })
        : matmulDyW(gpu, { dY: t.a, W: t.w, dX: t.c }, { M, N, K }, { schedule: o.schedule, format }),
    expected: { c: { values: combineRef(product, 1, 0, undefined, bias && toF64(bias)), atol: 2e-5 * scale, rtol: 1e-4 } },
  };
}

// Odd K (rows of W start mid-word), odd N, several tiles each way, and a single element.
const PACKED_SHAPES: Shape[] = [
  [7, 35, 67],
  [70, 130, 67],
  [5, 33, 17],
  [1, 1, 1],
];

describe('matmul kernels with 16-bit weights (bf16 and f16 packed two per u32)', () => {
  for (const format of ['bf16', 'f16'] as const) {
    for (const schedule of ['tiled', 'direct'] as const) {
      it(`${format} ${schedule}: X W^T, X W^T + bias and dY W match the float64 product of the rounded weights`, async () => {
        const gpu = await testGpu();
        for (const shape of PACKED_SHAPES) {
          await checkOp(gpu, packedWeightCase('XWt', shape, format, { schedule }));
          await checkOp(gpu, packedWeightCase('XWt', shape, format, { schedule, bias: true }));
          await checkOp(gpu, packedWeightCase('DyW', shape, format, { schedule }));
        }
      });
    }
    // Weights near 1e-5 are f16 subnormals (below 2^-14): they must widen to their values, not to zero.
    it(`${format}: tiny weights (f16 subnormals) widen exactly`, async () => {
      const gpu = await testGpu();
      await checkOp(gpu, packedWeightCase('XWt', [7, 35, 67], format, { schedule: 'direct', wScale: 3e-5 }));
      await checkOp(gpu, packedWeightCase('DyW', [7, 35, 67], format, { schedule: 'tiled', wScale: 3e-5 }));
    });
  }

  it('takes a 16-bit W at an odd element offset (2 bytes into a word) inside a larger buffer', async () => {
    const [M, N, K] = [7, 35, 67];
    const x = randomArray(M * K, 61);
    const w = randomArray(N * K, 62);
    const start = 301;
    const pool = new Float32Array(2 * 4096);
    pool.set(randomArray(pool.length, 63));
    pool.set(w, start);
    const packed = packWeights(pool, 'bf16');
    const at = (buffer: Binding) => ({ buffer: buffer as GPUBuffer, offset: start * 2, size: N * K * 2 });
    const expected = matmulXWtRef(toF64(x), roundAllTo('bf16', w), M, N, K);
    for (const schedule of ['tiled', 'direct'] as const) {
      await checkOp(await testGpu(), {
        inputs: { x, pool: packed },
        outputs: { y: M * N },
        run: (g, t) => matmulXWt(g, { X: t.x, W: at(t.pool), Y: t.y }, { M, N, K }, { schedule, format: 'bf16' }),
        expected: { y: { values: expected, atol: 2e-5, rtol: 1e-4 } },
      });
    }
  });

  it('refuses a 16-bit format for dY^T X, whose operands are activations', async () => {
    const gpu = await testGpu();
    const b = gpu.createBuffer(64, 'b');
    expect(() => matmulDyTX(gpu, { dY: b, X: b, dW: b }, { M: 1, N: 1, K: 1 }, { format: 'bf16' })).toThrow(/f32/);
  });
});

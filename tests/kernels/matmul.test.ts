import { describe, expect, it } from 'vitest';
import { Gpu } from '../../src/gpu/context';
import { matmulDyTX, matmulDyW, matmulXWt } from '../../src/kernels/matmul';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { combineRef, matmulDyTXRef, matmulDyWRef, matmulXWtRef } from '../reference/matmul';

type Layout = 'XWt' | 'DyW' | 'DyTX';

/** Element counts of (first input, second input, output) for each layout. */
function sizes(layout: Layout, M: number, N: number, K: number): [number, number, number] {
  if (layout === 'XWt') return [M * K, N * K, M * N];
  if (layout === 'DyW') return [M * N, N * K, M * K];
  return [M * N, M * K, N * K];
}

function reference(layout: Layout, a: Float32Array, b: Float32Array, M: number, N: number, K: number): Float64Array {
  if (layout === 'XWt') return matmulXWtRef(toF64(a), toF64(b), M, N, K);
  if (layout === 'DyW') return matmulDyWRef(toF64(a), toF64(b), M, N, K);
  return matmulDyTXRef(toF64(a), toF64(b), M, N, K);
}

const wrappers = { XWt: matmulXWt, DyW: matmulDyW, DyTX: matmulDyTX };

async function check(
  gpu: Gpu,
  layout: Layout,
  [M, N, K]: [number, number, number],
  {
    alpha = 1,
    beta = 0,
    withBias = false,
    schedule,
  }: { alpha?: number; beta?: number; withBias?: boolean; schedule?: 'tiled' | 'direct' },
): Promise<void> {
  const [na, nb, nc] = sizes(layout, M, N, K);
  const a = randomArray(na, 11);
  const b = randomArray(nb, 12);
  // beta == 0 must not read the output: NaN there would poison any read.
  const old = beta === 0 ? new Float32Array(nc).fill(NaN) : randomArray(nc, 13);
  const bias = withBias ? randomArray(N, 14) : undefined;
  const out = gpu.upload(old, 'out');
  const opts = { alpha, beta, schedule, bias: bias ? gpu.upload(bias, 'bias') : undefined };
  wrappers[layout](gpu, gpu.upload(a, 'a'), gpu.upload(b, 'b'), out, M, N, K, opts);
  const expected = combineRef(reference(layout, a, b, M, N, K), alpha, beta, toF64(old), bias && toF64(bias));
  expectClose(await gpu.readF32(out, nc), expected, { atol: 2e-5, rtol: 1e-4, label: `${layout} ${schedule} ${M}x${N}x${K}` });
}

describe('matmul kernels', () => {
  // Not multiples of the 64x64 tile or the 16-deep slice; the second spans several tiles each way;
  // the last two are LoRA-shaped (r = 3 on either side).
  const shapes: [number, number, number][] = [
    [7, 35, 67],
    [70, 130, 67],
    [67, 3, 35],
    [7, 35, 3],
    [1, 1, 1],
  ];

  // Both schedules on every device: workgroup-memory tiles (GPUs) and barrier-free blocks (CPUs).
  for (const schedule of ['tiled', 'direct'] as const) {
    for (const layout of ['XWt', 'DyW', 'DyTX'] as Layout[]) {
      it(`${layout} ${schedule} overwrites (beta = 0) without reading the output`, async () => {
        const gpu = await testGpu();
        for (const shape of shapes) await check(gpu, layout, shape, { schedule });
      });

      it(`${layout} ${schedule} scales and accumulates (alpha, beta)`, async () => {
        const gpu = await testGpu();
        for (const shape of shapes) await check(gpu, layout, shape, { alpha: 0.5, beta: 1, schedule });
        await check(gpu, layout, [7, 35, 67], { alpha: -2, beta: 0.25, schedule });
      });
    }
  }

  it('XWt adds the bias', async () => {
    const gpu = await testGpu();
    await check(gpu, 'XWt', [7, 35, 67], { withBias: true, schedule: 'tiled' });
    await check(gpu, 'XWt', [7, 35, 67], { withBias: true, schedule: 'direct' });
    await check(gpu, 'XWt', [70, 130, 67], { alpha: 0.5, beta: 1, withBias: true });
  });

  it('takes sub-range bindings at any 4-byte offset and leaves the rest alone', async () => {
    const gpu = await testGpu();
    const [M, N, K] = [7, 35, 67];
    const x = randomArray(M * K, 21);
    const w = randomArray(N * K, 22);
    const bias = randomArray(N, 23);
    // A buffer may not be read and written by one dispatch, so the inputs share one pool and Y another.
    const inputs = gpu.upload(randomArray(4096, 24), 'inputs');
    const outputs = randomArray(1024, 25);
    const yBuffer = gpu.upload(outputs, 'outputs');
    const at = (buffer: GPUBuffer, element: number, count: number) => ({ buffer, offset: element * 4, size: count * 4 });
    // X 256-byte aligned, W, bias and Y not; Y surrounded by values that must survive.
    const xAt = at(inputs, 64, M * K);
    const wAt = at(inputs, 64 + M * K + 5, N * K);
    const biasAt = at(inputs, 3001, N);
    gpu.write(xAt, x);
    gpu.write(wAt, w);
    gpu.write(biasAt, bias);
    const yStart = 67;
    matmulXWt(gpu, xAt, wAt, at(yBuffer, yStart, M * N), M, N, K, { bias: biasAt });
    const all = await gpu.readF32(yBuffer, 1024);
    const expected = combineRef(matmulXWtRef(toF64(x), toF64(w), M, N, K), 1, 0, undefined, toF64(bias));
    expectClose(all.subarray(yStart, yStart + M * N), expected, { atol: 2e-5, label: 'Y' });
    expect(all.subarray(0, yStart)).toEqual(outputs.subarray(0, yStart));
    expect(all.subarray(yStart + M * N)).toEqual(outputs.subarray(yStart + M * N));
  });

  it('XWt writes a column block of a wider output with outStride', async () => {
    const gpu = await testGpu();
    const [M, N, K, stride, col0] = [5, 35, 67, 53, 11];
    const x = randomArray(M * K, 31);
    const w = randomArray(N * K, 32);
    const old = randomArray(M * stride, 33);
    const y = gpu.upload(old, 'y');
    matmulXWt(gpu, gpu.upload(x, 'x'), gpu.upload(w, 'w'), { buffer: y, offset: col0 * 4, size: (M * stride - col0) * 4 }, M, N, K, {
      outStride: stride,
    });
    const got = await gpu.readF32(y, M * stride);
    const product = matmulXWtRef(toF64(x), toF64(w), M, N, K);
    const expected = toF64(old);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expected[m * stride + col0 + n] = product[m * N + n];
    expectClose(got, expected, { atol: 2e-5, label: 'Y' });
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
    const y = gpu.createBuffer(M * N * 4, 'y');
    const dx = gpu.createBuffer(M * K * 4, 'dx');
    matmulXWt(gpu, gpu.upload(x, 'x'), gpu.upload(w, 'w'), y, M, N, K, { schedule: 'tiled' });
    matmulDyW(gpu, gpu.upload(dy, 'dy'), gpu.upload(w, 'w'), dx, M, N, K, { schedule: 'tiled' });
    expectClose(await gpu.readF32(y, M * N), matmulXWtRef(toF64(x), toF64(w), M, N, K), { atol: 2e-5, label: 'Y' });
    expectClose(await gpu.readF32(dx, M * K), matmulDyWRef(toF64(dy), toF64(w), M, N, K), { atol: 2e-5, label: 'dX' });
  });
});

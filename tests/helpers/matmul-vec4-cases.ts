import type { Binding, Gpu } from '../../src/gpu/context';
import { matmulDyTX, matmulDyW, type MatmulDims, type MatmulOptions, matmulXWt } from '../../src/kernels/matmul';
import { randomArray, toF64 } from './numeric';
import type { OpCase } from './op-test';
import { combineRef, matmulDyTXRef, matmulDyWRef, matmulXWtRef } from '../reference/matmul';

// Cases for the vec4 matmul schedule's tests (tests/kernels/matmul-vec4*.test.ts).

export type Layout = 'XWt' | 'DyW' | 'DyTX';
export type Shape = [number, number, number];
export const TOL = { atol: 2e-5, rtol: 1e-4 };

/** Element counts of (first input, second input, output) for each layout. */
export function sizes(layout: Layout, [M, N, K]: Shape): [number, number, number] {
  if (layout === 'XWt') return [M * K, N * K, M * N];
  if (layout === 'DyW') return [M * N, N * K, M * K];
  return [M * N, M * K, N * K];
}

export function reference(layout: Layout, a: Float64Array, b: Float64Array, [M, N, K]: Shape): Float64Array {
  if (layout === 'XWt') return matmulXWtRef(a, b, M, N, K);
  if (layout === 'DyW') return matmulDyWRef(a, b, M, N, K);
  return matmulDyTXRef(a, b, M, N, K);
}

export function product(
  gpu: Gpu,
  layout: Layout,
  a: Binding,
  b: Binding,
  c: Binding,
  d: MatmulDims,
  opts: MatmulOptions,
  bias?: Binding,
): void {
  if (layout === 'XWt') matmulXWt(gpu, { X: a, W: b, Y: c, bias }, d, opts);
  else if (layout === 'DyW') matmulDyW(gpu, { dY: a, W: b, dX: c }, d, opts);
  else matmulDyTX(gpu, { dY: a, X: b, dW: c }, d, opts);
}

/** Entry points recorded while `run` records. */
export function recorded(gpu: Gpu, run: () => void): string[] {
  const entries: string[] = [];
  const stop = gpu.observeDispatches((d) => entries.push(d.kernel.name));
  try {
    run();
  } finally {
    stop();
  }
  return entries;
}

export interface Variant {
  alpha?: number;
  beta?: number;
  withBias?: boolean;
  splitK?: number;
}

/** One product on the vec4 schedule; beta = 0 must not read the output, which starts as NaN. */
export function productCase(
  layout: Layout,
  shape: Shape,
  { alpha = 1, beta = 0, withBias = false, splitK }: Variant,
  seen: string[],
): OpCase {
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

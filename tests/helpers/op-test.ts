import { expect } from 'vitest';
import type { Binding, Gpu } from '../../src/gpu/context';
import { expectClose } from './numeric';

/** Host data of a tensor: 4-byte elements, as every kernel binds them. */
export type HostArray = Float32Array | Int32Array | Uint32Array;

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface ExpectedOutput extends Tolerance {
  /** The float64 reference. */
  values: ArrayLike<number>;
  /** The part of the output compared with `values` (default: all of it). */
  pick?: (output: Float32Array) => ArrayLike<number>;
}

/** One case of a kernel test: tensors in, one op recorded, every output read back and compared. */
export interface OpCase {
  /** Uploaded as they are. */
  inputs?: Record<string, HostArray>;
  /**
   * What the op writes: an element count, for a buffer filled with NaN first (an op that
   * overwrites must write every element and read none, or NaN shows), or the starting contents of
   * an output that the op adds into or changes in place.
   */
  outputs: Record<string, number | Float32Array>;
  /**
   * Groups of tensor names that share one buffer, each tensor a 256-byte-aligned slice after a
   * 256-byte pad, as the engine binds sub-tensors. WebGPU refuses a buffer bound both read-only and
   * writable in one dispatch, so a group holds either inputs or outputs of each dispatch.
   */
  arenas?: string[][];
  /** Records the op (a wrapper call) on the uploaded tensors. */
  run(gpu: Gpu, tensors: Record<string, Binding>): void;
  /** Per output: the reference values and that output's tolerances. */
  expected: Record<string, ExpectedOutput>;
}

/**
 * Uploads the case's tensors, records its op, reads every output back with a single device wait
 * (Dawn on SwiftShader sometimes aborts the process while waiting on GPU work, so fewer waits make
 * a file less likely to be hit), compares each expected output, frees the buffers and returns all
 * outputs for further assertions.
 */
export async function checkOp(gpu: Gpu, c: OpCase): Promise<Record<string, Float32Array>> {
  const inputs = c.inputs ?? {};
  const lengths = new Map<string, number>();
  for (const [name, data] of Object.entries(inputs)) lengths.set(name, data.length);
  for (const [name, output] of Object.entries(c.outputs)) {
    if (lengths.has(name)) throw new Error(`op case: ${name} is both an input and an output`);
    lengths.set(name, typeof output === 'number' ? output : output.length);
  }
  for (const name of Object.keys(c.expected)) if (!(name in c.outputs)) throw new Error(`op case: expected ${name} is not an output`);
  const { tensors, buffers } = allocate(gpu, lengths, c.arenas ?? []);
  try {
    for (const [name, data] of Object.entries(inputs)) gpu.write(tensors[name], data);
    for (const [name, output] of Object.entries(c.outputs)) {
      gpu.write(tensors[name], typeof output === 'number' ? new Float32Array(output).fill(NaN) : output);
    }
    c.run(gpu, tensors);
    const read = await readBack(
      gpu,
      Object.keys(c.outputs).map((name) => [name, tensors[name], lengths.get(name)!]),
    );
    for (const [name, e] of Object.entries(c.expected)) {
      const output = read[name];
      expectClose(e.pick ? e.pick(output) : output, e.values, { atol: e.atol, rtol: e.rtol, label: name });
    }
    return read;
  } finally {
    for (const buffer of buffers) buffer.destroy();
  }
}

function allocate(gpu: Gpu, lengths: Map<string, number>, arenas: string[][]) {
  const tensors: Record<string, Binding> = {};
  const buffers: GPUBuffer[] = [];
  for (const [g, names] of arenas.entries()) {
    const aligned = names.map((name) => {
      const n = lengths.get(name);
      if (n === undefined) throw new Error(`op case: arena tensor ${name} is neither an input nor an output`);
      return Math.ceil((n * 4) / 256) * 256;
    });
    const buffer = gpu.createBuffer(256 + aligned.reduce((a, b) => a + b, 0), `arena ${g}`);
    buffers.push(buffer);
    let offset = 256;
    names.forEach((name, i) => {
      tensors[name] = { buffer, offset, size: lengths.get(name)! * 4 };
      offset += aligned[i];
    });
  }
  for (const [name, n] of lengths) {
    if (tensors[name]) continue;
    const buffer = gpu.createBuffer(n * 4, name);
    buffers.push(buffer);
    tensors[name] = buffer;
  }
  return { tensors, buffers };
}

async function readBack(gpu: Gpu, parts: [string, Binding, number][]): Promise<Record<string, Float32Array>> {
  const total = parts.reduce((sum, [, , n]) => sum + n, 0);
  const staging = gpu.createBuffer(total * 4, 'op readback');
  try {
    let offset = 0;
    for (const [, binding, n] of parts) {
      gpu.copy(binding, { buffer: staging, offset: offset * 4, size: n * 4 }, n * 4);
      offset += n;
    }
    const all = await gpu.readF32(staging, total);
    offset = 0;
    return Object.fromEntries(parts.map(([name, , n]) => [name, all.subarray(offset, (offset += n))]));
  } finally {
    staging.destroy();
  }
}

/** Numeric derivatives (central differences) of `loss(i)` with respect to x[i], x changed and restored in place. */
export function centralDifferences(loss: (index: number) => number, x: Float64Array, h: number, indices?: readonly number[]): Float64Array {
  const at = indices ?? Array.from(x, (_, i) => i);
  return Float64Array.from(at, (i) => {
    const saved = x[i];
    x[i] = saved + h;
    const up = loss(i);
    x[i] = saved - h;
    const down = loss(i);
    x[i] = saved;
    return (up - down) / (2 * h);
  });
}

export interface GradientCheck {
  /**
   * The scalar whose derivative with respect to element i of an input the reference's gradient
   * gives, as a function of the inputs below (usually sum(output * upstream gradient); an
   * elementwise op may return just element i's term, which keeps the rounding of the sum away).
   */
  loss: (index: number) => number;
  /** Per input: its float64 values (perturbed in place and restored), the analytic gradient, and the tolerance. */
  wrt: Record<string, { x: Float64Array; analytic: ArrayLike<number> } & Tolerance>;
  h: number;
  /** Which side the relative tolerance scales with. */
  relativeTo: 'numeric' | 'analytic';
  /** Some |analytic| must exceed this, so that a gradient of zeros cannot pass. */
  nonTrivial?: number;
}

/** Checks a float64 reference's analytic gradient against central differences of its forward. */
export function expectReferenceGradient(check: GradientCheck): void {
  for (const [name, { x, analytic, atol, rtol }] of Object.entries(check.wrt)) {
    const numeric = centralDifferences(check.loss, x, check.h);
    if (check.nonTrivial !== undefined) {
      expect(
        Array.from(analytic).some((g) => Math.abs(g) > check.nonTrivial!),
        `d${name} is not trivially zero`,
      ).toBe(true);
    }
    const [actual, expected] = check.relativeTo === 'numeric' ? [analytic, numeric] : [numeric, analytic];
    expectClose(actual, expected, { atol, rtol, label: `d${name}` });
  }
}

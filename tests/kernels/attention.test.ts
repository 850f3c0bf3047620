import { describe, expect, it } from 'vitest';
import type { Binding, Gpu } from '../../src/gpu/context';
import { type AttentionDims, attentionBackward, attentionForward, attentionForwardCached } from '../../src/kernels/attention';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { attentionBackwardRef, attentionForwardCachedRef, attentionForwardRef } from '../reference/attention';

interface Case {
  name: string;
  d: AttentionDims;
  /** Bind tensors as 256-byte-aligned slices of shared buffers, as the engine does. */
  slices?: boolean;
  /** Finite-difference check of the float64 reference (small shapes only). */
  checkReference?: boolean;
}

const cases: Case[] = [
  { name: '3 heads sharing 1 kv head', d: { B: 2, T: 7, H: 3, KV: 1, D: 10 }, checkReference: true },
  { name: '4 heads on 2 kv heads, sliced bindings', d: { B: 1, T: 13, H: 4, KV: 2, D: 16 }, slices: true, checkReference: true },
  { name: 'plain multi-head (H = KV)', d: { B: 2, T: 5, H: 2, KV: 2, D: 12 }, checkReference: true },
  // Long rows (the online softmax rescales whenever a later key raises the running max), more rows
  // than one 64-wide workgroup with a partial last one, head_dim past 64.
  { name: 'long rows, head_dim 72', d: { B: 1, T: 70, H: 2, KV: 1, D: 72 } },
  { name: 'largest head_dim', d: { B: 1, T: 66, H: 2, KV: 2, D: 128 } },
  // The stories260K head layout (8 query heads on 4 kv heads, head_dim 8), two batch rows.
  { name: 'stories260K heads', d: { B: 2, T: 67, H: 8, KV: 4, D: 8 } },
];

function inputs({ B, T, H, KV, D }: AttentionDims, seed: number) {
  return {
    q: randomArray(B * T * H * D, seed, -2, 2),
    k: randomArray(B * T * KV * D, seed + 1, -2, 2),
    v: randomArray(B * T * KV * D, seed + 2),
    dout: randomArray(B * T * H * D, seed + 3),
  };
}

/**
 * One buffer per tensor, or (sliced) 256-byte-aligned slices of shared buffers, one per group.
 * WebGPU forbids a buffer bound both read-only and writable in one dispatch, so groups keep
 * inputs apart from outputs.
 */
function allocate(gpu: Gpu, sliced: boolean, groups: number[][]): Binding[] {
  if (!sliced) return groups.flat().map((n, i) => gpu.createBuffer(n * 4, `t${i}`));
  return groups.flatMap((sizes, g) => {
    const aligned = sizes.map((n) => Math.ceil((n * 4) / 256) * 256);
    // A leading pad keeps the first slice off offset 0.
    const buffer = gpu.createBuffer(256 + aligned.reduce((a, b) => a + b, 0), `arena${g}`);
    let offset = 256;
    return sizes.map((n, i): Binding => {
      const slice = { buffer, offset, size: n * 4 };
      offset += aligned[i];
      return slice;
    });
  });
}

/**
 * Reads several tensors with a single device wait: Dawn on SwiftShader here sometimes aborts the
 * process while waiting on GPU work, so fewer waits make the file less likely to be hit.
 */
async function readBack(gpu: Gpu, parts: [Binding, number][]): Promise<Float32Array[]> {
  const total = parts.reduce((sum, [, n]) => sum + n, 0);
  const staging = gpu.createBuffer(total * 4, 'readback');
  let offset = 0;
  for (const [binding, n] of parts) {
    gpu.copy(binding, { buffer: staging, offset: offset * 4, size: n * 4 }, n * 4);
    offset += n;
  }
  const all = await gpu.readF32(staging, total);
  offset = 0;
  return parts.map(([, n]) => all.subarray(offset, (offset += n)));
}

describe('attention kernels', () => {
  cases.forEach(({ name, d, slices = false, checkReference = false }, index) => {
    const { B, T, H, KV, D } = d;
    const rows = B * H * T;
    const { q, k, v, dout } = inputs(d, 10 * index + 1);
    const ref = attentionForwardRef(toF64(q), toF64(k), toF64(v), d);
    const grads = attentionBackwardRef(toF64(dout), toF64(q), toF64(k), toF64(v), d);

    describe(`${name} (B=${B} T=${T} H=${H} KV=${KV} D=${D})`, () => {
      it('forward (out, lse) and backward (dq, dk, dv, overwritten) match the float64 reference', async () => {
        const gpu = await testGpu();
        const [qb, kb, vb, doutb, out, stats, dq, dk, dv] = allocate(gpu, slices, [
          [q.length, k.length, v.length, q.length],
          [q.length],
          [2 * rows],
          [q.length],
          [k.length, k.length],
        ]);
        gpu.write(qb, q);
        gpu.write(kb, k);
        gpu.write(vb, v);
        gpu.write(doutb, dout);
        gpu.write(dq, randomArray(q.length, 97));
        gpu.write(dk, randomArray(k.length, 98));
        gpu.write(dv, randomArray(k.length, 99));
        attentionForward(gpu, qb, kb, vb, out, stats, d);
        attentionBackward(gpu, doutb, qb, kb, vb, out, stats, dq, dk, dv, d);
        const [gotOut, gotLse, gotDq, gotDk, gotDv] = await readBack(gpu, [
          [out, q.length],
          [stats, rows],
          [dq, q.length],
          [dk, k.length],
          [dv, k.length],
        ]);
        const tol = { atol: 1e-5, rtol: 1e-4 };
        expectClose(gotOut, ref.out, { ...tol, label: 'out' });
        expectClose(gotLse, ref.lse, { ...tol, label: 'lse' });
        expectClose(gotDq, grads.dq, { ...tol, label: 'dq' });
        expectClose(gotDk, grads.dk, { ...tol, label: 'dk' });
        expectClose(gotDv, grads.dv, { ...tol, label: 'dv' });
      });

      if (checkReference) {
        it('reference gradients match finite differences of sum(out * dout)', () => {
          const x = { q: toF64(q), k: toF64(k), v: toF64(v) };
          const r = toF64(dout);
          const loss = () => attentionForwardRef(x.q, x.k, x.v, d).out.reduce((acc, o, i) => acc + o * r[i], 0);
          const eps = 1e-5;
          for (const [key, analytic] of [['q', grads.dq], ['k', grads.dk], ['v', grads.dv]] as const) {
            const tensor = x[key];
            const numeric = new Float64Array(tensor.length);
            for (let i = 0; i < tensor.length; i++) {
              const saved = tensor[i];
              tensor[i] = saved + eps;
              const up = loss();
              tensor[i] = saved - eps;
              const down = loss();
              tensor[i] = saved;
              numeric[i] = (up - down) / (2 * eps);
            }
            expect(analytic.some((g) => Math.abs(g) > 1e-3), `d${key} is not trivially zero`).toBe(true);
            expectClose(analytic, numeric, { atol: 1e-8, rtol: 1e-6, label: `d${key}` });
          }
        });
      }
    });
  });
});

interface CachedCase {
  name: string;
  /** T new queries per batch row. */
  d: AttentionDims;
  past: number;
  S: number;
  slices?: boolean;
}

const cachedCases: CachedCase[] = [
  { name: 'one new token, 3 heads on 1 kv head', d: { B: 1, T: 1, H: 3, KV: 1, D: 10 }, past: 12, S: 16 },
  { name: 'three new tokens, two rows, 4 heads on 2 kv heads, sliced', d: { B: 2, T: 3, H: 4, KV: 2, D: 16 }, past: 5, S: 11, slices: true },
  { name: 'prefill into a larger cache', d: { B: 1, T: 7, H: 3, KV: 1, D: 10 }, past: 0, S: 9 },
  { name: 'stories260K heads, late position', d: { B: 1, T: 1, H: 8, KV: 4, D: 8 }, past: 66, S: 70 },
  { name: 'head_dim 72 past one workgroup of keys', d: { B: 1, T: 2, H: 2, KV: 1, D: 72 }, past: 68, S: 75 },
];

describe('attention against a KV cache', () => {
  cachedCases.forEach(({ name, d, past, S, slices = false }, index) => {
    const { B, T, H, KV, D } = d;
    it(`${name} (B=${B} T=${T} past=${past} S=${S} H=${H} KV=${KV} D=${D}) matches the float64 reference`, async () => {
      const gpu = await testGpu();
      const q = randomArray(B * T * H * D, 100 + index, -2, 2);
      const kCache = randomArray(B * S * KV * D, 200 + index, -2, 2);
      const vCache = randomArray(B * S * KV * D, 300 + index);
      // Cache rows past the new positions are never valid: NaN there shows up in any output that reads them.
      for (let b = 0; b < B; b++) {
        kCache.fill(NaN, (b * S + past + T) * KV * D, (b + 1) * S * KV * D);
        vCache.fill(NaN, (b * S + past + T) * KV * D, (b + 1) * S * KV * D);
      }
      const ref = attentionForwardCachedRef(toF64(q), toF64(kCache), toF64(vCache), d, past, S);
      const [qb, kb, vb, out, stats] = allocate(gpu, slices, [[q.length, kCache.length, vCache.length], [q.length], [2 * B * H * T]]);
      gpu.write(qb, q);
      gpu.write(kb, kCache);
      gpu.write(vb, vCache);
      attentionForwardCached(gpu, qb, kb, vb, out, stats, d, { past, S });
      const [gotOut, gotLse] = await readBack(gpu, [
        [out, q.length],
        [stats, B * H * T],
      ]);
      expectClose(gotOut, ref.out, { atol: 1e-5, rtol: 1e-4, label: 'out' });
      expectClose(gotLse, ref.lse, { atol: 1e-5, rtol: 1e-4, label: 'lse' });
    });
  });

  it('the cached reference equals the tail rows of the full causal reference', () => {
    const full: AttentionDims = { B: 2, T: 9, H: 4, KV: 2, D: 6 };
    const past = 6;
    const tail: AttentionDims = { ...full, T: full.T - past };
    const q = toF64(randomArray(full.B * full.T * full.H * full.D, 401, -2, 2));
    const k = toF64(randomArray(full.B * full.T * full.KV * full.D, 402, -2, 2));
    const v = toF64(randomArray(full.B * full.T * full.KV * full.D, 403));
    const whole = attentionForwardRef(q, k, v, full);
    const rowWidth = full.H * full.D;
    const qTail = new Float64Array(full.B * tail.T * rowWidth);
    const outTail = new Float64Array(qTail.length);
    for (let b = 0; b < full.B; b++) {
      qTail.set(q.subarray((b * full.T + past) * rowWidth, (b + 1) * full.T * rowWidth), b * tail.T * rowWidth);
      outTail.set(whole.out.subarray((b * full.T + past) * rowWidth, (b + 1) * full.T * rowWidth), b * tail.T * rowWidth);
    }
    const cached = attentionForwardCachedRef(qTail, k, v, tail, past, full.T);
    expectClose(cached.out, outTail, { atol: 1e-12, rtol: 1e-12, label: 'out' });
  });

  it('refuses more positions than the cache holds', async () => {
    const gpu = await testGpu();
    const buffer = gpu.createBuffer(1024, 'x');
    expect(() => attentionForwardCached(gpu, buffer, buffer, buffer, buffer, buffer, { B: 1, T: 2, H: 1, KV: 1, D: 4 }, { past: 7, S: 8 })).toThrow(
      RangeError,
    );
  });
});

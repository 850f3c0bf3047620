import { describe, expect, it } from 'vitest';
import { type AttentionDims, attentionBackward, attentionForward, attentionForwardCached } from '../../src/kernels/attention';
import { testGpu } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { checkOp, expectReferenceGradient } from '../helpers/op-test';
import { attentionBackwardRef, attentionForwardCachedRef, attentionForwardRef } from '../reference/attention';

interface Case {
  name: string;
  d: AttentionDims;
  /** Bind tensors as 256-byte-aligned slices of shared buffers, as the engine does. */
  slices?: boolean;
  /** Finite-difference check of the float64 reference (small shapes only). */
  checkReference?: boolean;
}

const CASES: Case[] = [
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

const TOL = { atol: 1e-5, rtol: 1e-4 };

describe('attention kernels', () => {
  CASES.forEach(({ name, d, slices = false, checkReference = false }, index) => {
    const { B, T, H, KV, D } = d;
    const rows = B * H * T;
    const { q, k, v, dout } = inputs(d, 10 * index + 1);
    const ref = attentionForwardRef(toF64(q), toF64(k), toF64(v), d);
    const grads = attentionBackwardRef(toF64(dout), toF64(q), toF64(k), toF64(v), d);

    describe(`${name} (B=${B} T=${T} H=${H} KV=${KV} D=${D})`, () => {
      it('forward (out, lse) and backward (dq, dk, dv, overwritten) match the float64 reference', async () => {
        await checkOp(await testGpu(), {
          inputs: { q, k, v, dout },
          outputs: { out: q.length, stats: 2 * rows, dq: q.length, dk: k.length, dv: k.length },
          // Inputs apart from outputs: WebGPU refuses a buffer bound read-only and writable in one dispatch.
          arenas: slices ? [['q', 'k', 'v', 'dout'], ['out'], ['stats'], ['dq'], ['dk', 'dv']] : [],
          run: (gpu, t) => {
            attentionForward(gpu, { q: t.q, k: t.k, v: t.v, out: t.out, stats: t.stats }, d);
            attentionBackward(gpu, { dout: t.dout, q: t.q, k: t.k, v: t.v, out: t.out, stats: t.stats, dq: t.dq, dk: t.dk, dv: t.dv }, d);
          },
          expected: {
            out: { values: ref.out, ...TOL },
            stats: { values: ref.lse, ...TOL, pick: (stats) => stats.subarray(0, rows) },
            dq: { values: grads.dq, ...TOL },
            dk: { values: grads.dk, ...TOL },
            dv: { values: grads.dv, ...TOL },
          },
        });
      });

      if (checkReference) {
        it('reference gradients match finite differences of sum(out * dout)', () => {
          const x = { q: toF64(q), k: toF64(k), v: toF64(v) };
          const r = toF64(dout);
          const tol = { atol: 1e-8, rtol: 1e-6 };
          expectReferenceGradient({
            loss: () => attentionForwardRef(x.q, x.k, x.v, d).out.reduce((acc, o, i) => acc + o * r[i], 0),
            wrt: {
              q: { x: x.q, analytic: grads.dq, ...tol },
              k: { x: x.k, analytic: grads.dk, ...tol },
              v: { x: x.v, analytic: grads.dv, ...tol },
            },
            h: 1e-5,
            relativeTo: 'numeric',
            nonTrivial: 1e-3,
          });
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

const CACHED_CASES: CachedCase[] = [
  { name: 'one new token, 3 heads on 1 kv head', d: { B: 1, T: 1, H: 3, KV: 1, D: 10 }, past: 12, S: 16 },
  {
    name: 'three new tokens, two rows, 4 heads on 2 kv heads, sliced',
    d: { B: 2, T: 3, H: 4, KV: 2, D: 16 },
    past: 5,
    S: 11,
    slices: true,
  },
  { name: 'prefill into a larger cache', d: { B: 1, T: 7, H: 3, KV: 1, D: 10 }, past: 0, S: 9 },
  { name: 'stories260K heads, late position', d: { B: 1, T: 1, H: 8, KV: 4, D: 8 }, past: 66, S: 70 },
  { name: 'head_dim 72 past one workgroup of keys', d: { B: 1, T: 2, H: 2, KV: 1, D: 72 }, past: 68, S: 75 },
];

describe('attention against a KV cache', () => {
  CACHED_CASES.forEach(({ name, d, past, S, slices = false }, index) => {
    const { B, T, H, KV, D } = d;
    it(`${name} (B=${B} T=${T} past=${past} S=${S} H=${H} KV=${KV} D=${D}) matches the float64 reference`, async () => {
      const q = randomArray(B * T * H * D, 100 + index, -2, 2);
      const kCache = randomArray(B * S * KV * D, 200 + index, -2, 2);
      const vCache = randomArray(B * S * KV * D, 300 + index);
      // Cache rows past the new positions are never valid: NaN there shows up in any output that reads them.
      for (let b = 0; b < B; b++) {
        kCache.fill(NaN, (b * S + past + T) * KV * D, (b + 1) * S * KV * D);
        vCache.fill(NaN, (b * S + past + T) * KV * D, (b + 1) * S * KV * D);
      }
      const ref = attentionForwardCachedRef(toF64(q), toF64(kCache), toF64(vCache), d, past, S);
      await checkOp(await testGpu(), {
        inputs: { q, kCache, vCache },
        outputs: { out: q.length, stats: 2 * B * H * T },
        arenas: slices ? [['q', 'kCache', 'vCache'], ['out'], ['stats']] : [],
        run: (gpu, t) =>
          attentionForwardCached(gpu, { q: t.q, kCache: t.kCache, vCache: t.vCache, out: t.out, stats: t.stats }, { ...d, past, S }),
        expected: {
          out: { values: ref.out, ...TOL },
          stats: { values: ref.lse, ...TOL, pick: (stats) => stats.subarray(0, B * H * T) },
        },
      });
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
    const x = gpu.createBuffer(1024, 'x');
    const t = { q: x, kCache: x, vCache: x, out: x, stats: x };
    expect(() => attentionForwardCached(gpu, t, { B: 1, T: 2, H: 1, KV: 1, D: 4, past: 7, S: 8 })).toThrow(RangeError);
  });
});

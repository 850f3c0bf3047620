import { describe, expect, it } from 'vitest';
import {
  type AttentionDims,
  type AttentionOptions,
  type AttentionTiles,
  attentionBackward,
  attentionForward,
  attentionForwardCached,
  attentionTiles,
} from '../../src/kernels/attention';
import { testGpu, testGpuWithLimits } from '../helpers/gpu';
import { expectClose, randomArray, toF64 } from '../helpers/numeric';
import { checkOp, expectReferenceGradient, type OpCase } from '../helpers/op-test';
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
  // SmolLM2's head layout (3 query heads per kv head, head_dim 64) over several query and key blocks.
  { name: 'GQA 3:1, head_dim 64, partial blocks', d: { B: 2, T: 70, H: 6, KV: 2, D: 64 } },
  { name: 'GQA 3:1, head_dim 128, one partial block', d: { B: 2, T: 7, H: 3, KV: 1, D: 128 } },
];

/** Both schedules on every device: barrier-free rows (CPU adapters) and FlashAttention-2 tiles (GPUs). */
const SCHEDULES: NonNullable<AttentionOptions['schedule']>[] = ['rows', 'tiled'];

function inputs({ B, T, H, KV, D }: AttentionDims, seed: number) {
  return {
    q: randomArray(B * T * H * D, seed, -2, 2),
    k: randomArray(B * T * KV * D, seed + 1, -2, 2),
    v: randomArray(B * T * KV * D, seed + 2),
    dout: randomArray(B * T * H * D, seed + 3),
  };
}

const TOL = { atol: 1e-5, rtol: 1e-4 };

/** Forward then backward of one case through checkOp: every output starts as NaN and must match the float64 reference. */
function forwardBackwardCase(d: AttentionDims, seed: number, options: AttentionOptions, slices = false): OpCase {
  const rows = d.B * d.H * d.T;
  const { q, k, v, dout } = inputs(d, seed);
  const ref = attentionForwardRef(toF64(q), toF64(k), toF64(v), d);
  const grads = attentionBackwardRef(toF64(dout), toF64(q), toF64(k), toF64(v), d);
  return {
    inputs: { q, k, v, dout },
    outputs: { out: q.length, stats: 2 * rows, dq: q.length, dk: k.length, dv: k.length },
    // Inputs apart from outputs: WebGPU refuses a buffer bound read-only and writable in one dispatch.
    arenas: slices ? [['q', 'k', 'v', 'dout'], ['out'], ['stats'], ['dq'], ['dk', 'dv']] : [],
    run: (gpu, t) => {
      attentionForward(gpu, { q: t.q, k: t.k, v: t.v, out: t.out, stats: t.stats }, d, options);
      attentionBackward(
        gpu,
        { dout: t.dout, q: t.q, k: t.k, v: t.v, out: t.out, stats: t.stats, dq: t.dq, dk: t.dk, dv: t.dv },
        d,
        options,
      );
    },
    expected: {
      out: { values: ref.out, ...TOL },
      stats: { values: ref.lse, ...TOL, pick: (stats) => stats.subarray(0, rows) },
      dq: { values: grads.dq, ...TOL },
      dk: { values: grads.dk, ...TOL },
      dv: { values: grads.dv, ...TOL },
    },
  };
}

describe('attention kernels', () => {
  CASES.forEach(({ name, d, slices = false, checkReference = false }, index) => {
    const { B, T, H, KV, D } = d;
    describe(`${name} (B=${B} T=${T} H=${H} KV=${KV} D=${D})`, () => {
      it.each(SCHEDULES)('%s: forward (out, lse) and backward (dq, dk, dv, overwritten) match the float64 reference', async (schedule) => {
        await checkOp(await testGpu(), forwardBackwardCase(d, 10 * index + 1, { schedule }, slices));
      });

      if (checkReference) {
        it('reference gradients match finite differences of sum(out * dout)', () => {
          const { q, k, v, dout } = inputs(d, 10 * index + 1);
          const grads = attentionBackwardRef(toF64(dout), toF64(q), toF64(k), toF64(v), d);
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

  it('tiled backward sums the query heads of a kv head in a fixed order: two runs give the same bits', async () => {
    const gpu = await testGpu();
    const d: AttentionDims = { B: 1, T: 40, H: 3, KV: 1, D: 64 };
    const first = await checkOp(gpu, forwardBackwardCase(d, 77, { schedule: 'tiled' }));
    const dk = Float32Array.from(first.dk);
    const dv = Float32Array.from(first.dv);
    const second = await checkOp(gpu, forwardBackwardCase(d, 77, { schedule: 'tiled' }));
    expect(second.dk).toEqual(dk);
    expect(second.dv).toEqual(dv);
  });

  // A GPU with only the WebGPU minimum of workgroup storage gets smaller blocks (head_dim 128: the
  // smallest of every pass; 72: the middle ones), so every block shape in the wrapper's table runs.
  const SMALL_STORAGE: { d: AttentionDims; tiles: Record<'forward' | 'dq' | 'dkdv', AttentionTiles> }[] = [
    {
      d: { B: 1, T: 70, H: 3, KV: 1, D: 128 },
      tiles: { forward: { BQ: 8, BK: 8 }, dq: { BQ: 4, BK: 8 }, dkdv: { BQ: 4, BK: 8 } },
    },
    {
      d: { B: 2, T: 19, H: 3, KV: 1, D: 72 },
      tiles: { forward: { BQ: 16, BK: 16 }, dq: { BQ: 8, BK: 16 }, dkdv: { BQ: 8, BK: 16 } },
    },
  ];
  for (const [index, { d, tiles }] of SMALL_STORAGE.entries()) {
    it(`tiled with 16 KiB of workgroup storage (T=${d.T} H=${d.H} KV=${d.KV} D=${d.D}) matches the float64 reference`, async () => {
      const gpu = await testGpuWithLimits({ maxComputeWorkgroupStorageSize: 16384 });
      for (const pass of ['forward', 'dq', 'dkdv'] as const) expect(attentionTiles(gpu, pass, d.D), pass).toEqual(tiles[pass]);
      await checkOp(gpu, forwardBackwardCase(d, 500 + index, { schedule: 'tiled' }));
    });
  }
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
    it.each(SCHEDULES)(
      `%s: ${name} (B=${B} T=${T} past=${past} S=${S} H=${H} KV=${KV} D=${D}) matches the float64 reference`,
      async (schedule) => {
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
            attentionForwardCached(
              gpu,
              { q: t.q, kCache: t.kCache, vCache: t.vCache, out: t.out, stats: t.stats },
              { ...d, past, S },
              { schedule },
            ),
          expected: {
            out: { values: ref.out, ...TOL },
            stats: { values: ref.lse, ...TOL, pick: (stats) => stats.subarray(0, B * H * T) },
          },
        });
      },
    );
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

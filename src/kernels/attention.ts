import source from '../../shaders/attention.wgsl?raw';
import tiledSource from '../../shaders/attention-tiled.wgsl?raw';
import type { Binding, Gpu, KernelParams } from '../gpu/context';

/** batch, sequence length, query heads, key/value heads, head_dim. */
export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  KV: number;
  D: number;
}

/** The row kernels keep a row's vectors in private arrays of this length; the tiled ones a half of it (CHUNK). */
const MAX_HEAD_DIM = 128;
/** Workgroup size of every entry point (one invocation per row; a tiled workgroup shares 64 among its rows). */
const WG = 64;

export interface AttentionOptions {
  /**
   * 'rows': one invocation per query (or key) row, no workgroup memory or barriers (CPU adapters);
   * 'tiled': FlashAttention-2 blocks in workgroup memory (GPUs). Default: `gpu.gpuSchedules`.
   */
  schedule?: 'rows' | 'tiled';
}

/** Query rows (BQ) and key rows (BK) per block of a tiled pass. */
export interface AttentionTiles {
  BQ: number;
  BK: number;
}

/**
 * Candidate blocks per tiled pass, best first: larger blocks reuse each staged row more, smaller ones
 * fit smaller workgroup storage (16 KiB is the WebGPU minimum) and give the dk/dv pass more
 * workgroups. `floats`: the workgroup arrays each pass declares, with P = D + 1 floats per staged
 * row and BK + 1 per score row (both padded, see attention-tiled.wgsl).
 */
const TILE_CHOICES: Record<'forward' | 'dq' | 'dkdv', { tiles: AttentionTiles[]; floats: (t: AttentionTiles, P: number) => number }> = {
  forward: {
    tiles: [
      { BQ: 16, BK: 32 },
      { BQ: 16, BK: 16 },
      { BQ: 8, BK: 8 },
    ],
    floats: ({ BQ, BK }, P) => BQ * P + 2 * BK * P + BQ * (BK + 1),
  },
  dq: {
    tiles: [
      { BQ: 16, BK: 32 },
      { BQ: 8, BK: 16 },
      { BQ: 4, BK: 8 },
    ],
    floats: ({ BQ, BK }, P) => 2 * BQ * P + 2 * BK * P + BQ * (BK + 1) + WG,
  },
  dkdv: {
    tiles: [
      { BQ: 16, BK: 16 },
      { BQ: 8, BK: 16 },
      { BQ: 4, BK: 8 },
    ],
    floats: ({ BQ, BK }, P) => 2 * BK * P + 2 * BQ * P + 2 * BQ * (BK + 1) + 2 * BQ,
  },
};

/** The blocks a tiled pass uses for head_dim D on this device: the first candidate whose tiles fit its workgroup storage. */
export function attentionTiles(gpu: Gpu, pass: keyof typeof TILE_CHOICES, D: number): AttentionTiles {
  const { tiles, floats } = TILE_CHOICES[pass];
  const bytes = gpu.limits.maxComputeWorkgroupStorageSize;
  const fit = tiles.find((t) => 4 * floats(t, D + 1) <= bytes);
  if (!fit) throw new Error(`attention: head_dim ${D} needs more than the ${bytes} bytes of workgroup storage this GPU offers`);
  return fit;
}

function tiled(gpu: Gpu, options: AttentionOptions): boolean {
  return (options.schedule ?? (gpu.gpuSchedules ? 'tiled' : 'rows')) === 'tiled';
}

/** A forward of T new queries against a KV cache: `past` positions already cached, room for `S`. */
export interface CachedAttentionDims extends AttentionDims {
  past: number;
  S: number;
}

/**
 * The fields every entry point reads; the forward adds the cache geometry, the row kernels head_dim
 * (a pipeline constant of the tiled ones).
 */
function params(d: AttentionDims): KernelParams {
  if (d.H % d.KV !== 0) throw new Error(`attention: ${d.H} query heads do not split into ${d.KV} kv heads`);
  if (d.D > MAX_HEAD_DIM) throw new Error(`attention: head_dim ${d.D} exceeds ${MAX_HEAD_DIM}`);
  return { B: d.B, T: d.T, H: d.H, KV: d.KV, scale: 1 / Math.sqrt(d.D) };
}

/**
 * Causal GQA attention. q [B*T, H*D], k and v [B*T, KV*D] (RoPE applied), out [B*T, H*D].
 * stats [2 * B*H*T]: the first half receives the log-sum-exp of each (b, h, t) score row, which
 * attentionBackward needs; the second half is its scratch.
 */
export function attentionForward(
  gpu: Gpu,
  t: { q: Binding; k: Binding; v: Binding; out: Binding; stats: Binding },
  d: AttentionDims,
  options: AttentionOptions = {},
): void {
  dispatchForward(gpu, t, { ...d, past: 0, S: d.T }, options);
}

/**
 * The same attention for T new queries at positions [past, past + T) of each batch row against a
 * KV cache: kCache and vCache [B*S, KV*D] hold positions [0, past + T) of row b at rows
 * b*S + position (the new keys and values already written). out [B*T, H*D]; lse lands in stats
 * [B*H*T] as in attentionForward. Positions past past + T are never read.
 */
export function attentionForwardCached(
  gpu: Gpu,
  t: { q: Binding; kCache: Binding; vCache: Binding; out: Binding; stats: Binding },
  d: CachedAttentionDims,
  options: AttentionOptions = {},
): void {
  dispatchForward(gpu, { q: t.q, k: t.kCache, v: t.vCache, out: t.out, stats: t.stats }, d, options);
}

function dispatchForward(
  gpu: Gpu,
  bindings: { q: Binding; k: Binding; v: Binding; out: Binding; stats: Binding },
  d: CachedAttentionDims,
  options: AttentionOptions,
): void {
  const p = params(d);
  if (d.past + d.T > d.S) throw new RangeError(`attention: ${d.past} cached + ${d.T} new positions do not fit a cache of ${d.S}`);
  if (tiled(gpu, options)) {
    const tiles = attentionTiles(gpu, 'forward', d.D);
    gpu.dispatch(gpu.kernel(tiledSource, 'attention_forward_tiled', { D: d.D, ...tiles }), {
      params: { ...p, past: d.past, S: d.S },
      bindings,
      workgroups: gpu.grid(d.B * d.H * Math.ceil(d.T / tiles.BQ)),
    });
    return;
  }
  gpu.dispatch(gpu.kernel(source, 'attention_forward'), {
    params: { ...p, D: d.D, past: d.past, S: d.S },
    bindings,
    workgroups: gpu.grid(Math.ceil((d.B * d.H * d.T) / WG)),
  });
}

/**
 * Overwrites dq [B*T, H*D] and dk, dv [B*T, KV*D]; `out` and `stats` must come from the
 * attentionForward of the same q, k, v. dk/dv sum over the query heads sharing a kv head.
 */
export function attentionBackward(
  gpu: Gpu,
  t: { dout: Binding; q: Binding; k: Binding; v: Binding; out: Binding; stats: Binding; dq: Binding; dk: Binding; dv: Binding },
  d: AttentionDims,
  options: AttentionOptions = {},
): void {
  const p = params(d);
  const { q, k, v, stats, dout } = t;
  if (tiled(gpu, options)) {
    const dqTiles = attentionTiles(gpu, 'dq', d.D);
    gpu.dispatch(gpu.kernel(tiledSource, 'attention_backward_dq_tiled', { D: d.D, ...dqTiles }), {
      params: p,
      bindings: { q, k, v, stats, dout, o: t.out, dq: t.dq },
      workgroups: gpu.grid(d.B * d.H * Math.ceil(d.T / dqTiles.BQ)),
    });
    const dkdvTiles = attentionTiles(gpu, 'dkdv', d.D);
    gpu.dispatch(gpu.kernel(tiledSource, 'attention_backward_dkdv_tiled', { D: d.D, ...dkdvTiles }), {
      params: p,
      bindings: { q, k, v, stats, dout, dk: t.dk, dv: t.dv },
      workgroups: gpu.grid(d.B * d.KV * Math.ceil(d.T / dkdvTiles.BK)),
    });
    return;
  }
  const rowParams = { ...p, D: d.D };
  gpu.dispatch(gpu.kernel(source, 'attention_backward_dq'), {
    params: rowParams,
    bindings: { q, k, v, stats, dout, o: t.out, dq: t.dq },
    workgroups: gpu.grid(Math.ceil((d.B * d.H * d.T) / WG)),
  });
  gpu.dispatch(gpu.kernel(source, 'attention_backward_dkdv'), {
    params: rowParams,
    bindings: { q, k, v, stats, dout, dk: t.dk, dv: t.dv },
    workgroups: gpu.grid(Math.ceil((d.B * d.KV * d.T) / WG)),
  });
}

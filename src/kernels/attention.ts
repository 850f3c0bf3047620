import source from '../../shaders/attention.wgsl?raw';
import type { Binding, Gpu, KernelParams } from '../gpu/context';

/** batch, sequence length, query heads, key/value heads, head_dim. */
export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  KV: number;
  D: number;
}

/** One invocation keeps its row's vectors and accumulators in private arrays of this length. */
const MAX_HEAD_DIM = 128;
/** Workgroup size of every entry point (one invocation per row). */
const WG = 64;

/** A forward of T new queries against a KV cache: `past` positions already cached, room for `S`. */
export interface CachedAttentionDims extends AttentionDims {
  past: number;
  S: number;
}

/** The fields every entry point reads; the forward adds the cache geometry. */
function params(d: AttentionDims): KernelParams {
  if (d.H % d.KV !== 0) throw new Error(`attention: ${d.H} query heads do not split into ${d.KV} kv heads`);
  if (d.D > MAX_HEAD_DIM) throw new Error(`attention: head_dim ${d.D} exceeds ${MAX_HEAD_DIM}`);
  return { B: d.B, T: d.T, H: d.H, KV: d.KV, D: d.D, scale: 1 / Math.sqrt(d.D) };
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
): void {
  dispatchForward(gpu, t, { ...d, past: 0, S: d.T });
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
): void {
  dispatchForward(gpu, { q: t.q, k: t.kCache, v: t.vCache, out: t.out, stats: t.stats }, d);
}

function dispatchForward(
  gpu: Gpu,
  bindings: { q: Binding; k: Binding; v: Binding; out: Binding; stats: Binding },
  d: CachedAttentionDims,
): void {
  const p = params(d);
  if (d.past + d.T > d.S) throw new RangeError(`attention: ${d.past} cached + ${d.T} new positions do not fit a cache of ${d.S}`);
  gpu.dispatch(gpu.kernel(source, 'attention_forward'), {
    params: { ...p, past: d.past, S: d.S },
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
): void {
  const p = params(d);
  const { q, k, v, stats, dout } = t;
  gpu.dispatch(gpu.kernel(source, 'attention_backward_dq'), {
    params: p,
    bindings: { q, k, v, stats, dout, o: t.out, dq: t.dq },
    workgroups: gpu.grid(Math.ceil((d.B * d.H * d.T) / WG)),
  });
  gpu.dispatch(gpu.kernel(source, 'attention_backward_dkdv'), {
    params: p,
    bindings: { q, k, v, stats, dout, dk: t.dk, dv: t.dv },
    workgroups: gpu.grid(Math.ceil((d.B * d.KV * d.T) / WG)),
  });
}

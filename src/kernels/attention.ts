import source from '../../shaders/attention.wgsl?raw';
import { type Binding, type Gpu, type Param, f32 } from '../gpu/context';

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

function params(d: AttentionDims): Param[] {
  if (d.H % d.KV !== 0) throw new Error(`attention: ${d.H} query heads do not split into ${d.KV} kv heads`);
  if (d.D > MAX_HEAD_DIM) throw new Error(`attention: head_dim ${d.D} exceeds ${MAX_HEAD_DIM}`);
  return [d.B, d.T, d.H, d.KV, d.D, f32(1 / Math.sqrt(d.D))];
}

/**
 * Causal GQA attention. q [B*T, H*D], k and v [B*T, KV*D] (RoPE applied), out [B*T, H*D].
 * stats [2 * B*H*T]: the first half receives the log-sum-exp of each (b, h, t) score row, which
 * attentionBackward needs; the second half is its scratch.
 */
export function attentionForward(
  gpu: Gpu,
  q: Binding,
  k: Binding,
  v: Binding,
  out: Binding,
  stats: Binding,
  d: AttentionDims,
): void {
  gpu.dispatch(
    gpu.pipeline(source, 'attention_forward'),
    params(d),
    [q, k, v, out, stats],
    gpu.grid(Math.ceil((d.B * d.H * d.T) / WG)),
  );
}

/**
 * Overwrites dq [B*T, H*D] and dk, dv [B*T, KV*D]; `out` and `stats` must come from the
 * attentionForward of the same q, k, v. dk/dv sum over the query heads sharing a kv head.
 */
export function attentionBackward(
  gpu: Gpu,
  dout: Binding,
  q: Binding,
  k: Binding,
  v: Binding,
  out: Binding,
  stats: Binding,
  dq: Binding,
  dk: Binding,
  dv: Binding,
  d: AttentionDims,
): void {
  const p = params(d);
  gpu.dispatch(
    gpu.pipeline(source, 'attention_backward_dq'),
    p,
    [q, k, v, undefined, stats, dout, out, dq],
    gpu.grid(Math.ceil((d.B * d.H * d.T) / WG)),
  );
  gpu.dispatch(
    gpu.pipeline(source, 'attention_backward_dkdv'),
    p,
    [q, k, v, undefined, stats, dout, undefined, undefined, dk, dv],
    gpu.grid(Math.ceil((d.B * d.KV * d.T) / WG)),
  );
}

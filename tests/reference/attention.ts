/** batch, sequence length, query heads, key/value heads, head_dim. */
export interface AttentionRefDims {
  B: number;
  T: number;
  H: number;
  KV: number;
  D: number;
}

/** Softmax probabilities of row (b, h, t) over keys 0..t, plus its log-sum-exp. */
function probabilities(q: Float64Array, k: Float64Array, d: AttentionRefDims, b: number, h: number, t: number) {
  const { T, H, KV, D } = d;
  const g = Math.floor(h / (H / KV));
  const scale = 1 / Math.sqrt(D);
  const s = new Float64Array(t + 1);
  let max = -Infinity;
  for (let j = 0; j <= t; j++) {
    let dot = 0;
    for (let e = 0; e < D; e++) dot += q[(b * T + t) * H * D + h * D + e] * k[(b * T + j) * KV * D + g * D + e];
    s[j] = scale * dot;
    max = Math.max(max, s[j]);
  }
  let sum = 0;
  for (let j = 0; j <= t; j++) sum += Math.exp(s[j] - max);
  const p = new Float64Array(t + 1);
  for (let j = 0; j <= t; j++) p[j] = Math.exp(s[j] - max) / sum;
  return { p, lse: max + Math.log(sum), g, scale };
}

/** float64 causal GQA attention: out [B*T, H*D] and lse per (b, h, t) row, ordered (b * H + h) * T + t. */
export function attentionForwardRef(q: Float64Array, k: Float64Array, v: Float64Array, d: AttentionRefDims) {
  const { B, T, H, KV, D } = d;
  const out = new Float64Array(B * T * H * D);
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const row = probabilities(q, k, d, b, h, t);
        lse[(b * H + h) * T + t] = row.lse;
        for (let j = 0; j <= t; j++) {
          for (let e = 0; e < D; e++) {
            out[(b * T + t) * H * D + h * D + e] += row.p[j] * v[(b * T + j) * KV * D + row.g * D + e];
          }
        }
      }
    }
  }
  return { out, lse };
}

/** float64 analytic gradients of sum(out * dout) with respect to q, k, v. */
export function attentionBackwardRef(dout: Float64Array, q: Float64Array, k: Float64Array, v: Float64Array, d: AttentionRefDims) {
  const { B, T, H, KV, D } = d;
  const { out } = attentionForwardRef(q, k, v, d);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const { p, g, scale } = probabilities(q, k, d, b, h, t);
        const qi = (b * T + t) * H * D + h * D;
        let dsum = 0;
        for (let e = 0; e < D; e++) dsum += dout[qi + e] * out[qi + e];
        for (let j = 0; j <= t; j++) {
          const kj = (b * T + j) * KV * D + g * D;
          let dp = 0;
          for (let e = 0; e < D; e++) dp += dout[qi + e] * v[kj + e];
          const ds = p[j] * (dp - dsum);
          for (let e = 0; e < D; e++) {
            dq[qi + e] += scale * ds * k[kj + e];
            dk[kj + e] += scale * ds * q[qi + e];
            dv[kj + e] += p[j] * dout[qi + e];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

/**
 * float64 attention of T new queries at positions [past, past + T) against a cache holding S
 * positions per batch row (kCache, vCache [B*S, KV*D]); query t sees cache rows 0..past + t.
 * Written independently of attentionForwardRef so the two can check each other.
 */
export function attentionForwardCachedRef(
  q: Float64Array,
  kCache: Float64Array,
  vCache: Float64Array,
  d: AttentionRefDims,
  past: number,
  S: number,
) {
  const { B, T, H, KV, D } = d;
  const out = new Float64Array(B * T * H * D);
  const lse = new Float64Array(B * H * T);
  const scale = 1 / Math.sqrt(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor((h * KV) / H);
      for (let t = 0; t < T; t++) {
        const visible = past + t + 1;
        const scores: number[] = [];
        for (let j = 0; j < visible; j++) {
          let dot = 0;
          for (let e = 0; e < D; e++) dot += q[(b * T + t) * H * D + h * D + e] * kCache[(b * S + j) * KV * D + g * D + e];
          scores.push(dot * scale);
        }
        const max = Math.max(...scores);
        const weights = scores.map((s) => Math.exp(s - max));
        const total = weights.reduce((a, w) => a + w, 0);
        lse[(b * H + h) * T + t] = max + Math.log(total);
        for (let j = 0; j < visible; j++) {
          for (let e = 0; e < D; e++) {
            out[(b * T + t) * H * D + h * D + e] += (weights[j] / total) * vCache[(b * S + j) * KV * D + g * D + e];
          }
        }
      }
    }
  }
  return { out, lse };
}

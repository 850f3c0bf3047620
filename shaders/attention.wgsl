// Causal multi-head attention with grouped-query attention (GQA), flash-attention style.
//
// Shapes (token-major, heads contiguous inside a token, m = b * T + t):
//   q, dout, out, dq: [B*T, H*D]      k, v: [B*S, KV*D]      dk, dv: [B*T, KV*D]
//   stats: [2, B*H*T], row r = (b * H + h) * T + t: stats[r] = lse, stats[B*H*T + r] = Dsum (backward).
// Query head h reads kv head g = h / (H / KV).
//
// The T queries sit at positions past + t; k and v hold S >= past + T positions per batch row, of
// which keys 0 .. past + t are visible to query t. Training runs past = 0, S = T (the backward
// passes assume exactly that); generation with a KV cache runs the new tokens (T of them) against
// the cache (S its capacity, past the positions already in it, the new ones copied in already).
//
// Forward:  s_tj = scale * q_t . k_j for j <= past + t (scale = D^-0.5), P = softmax_j(s),
//           o_t = sum_j P_tj v_j, lse_t = log sum_j exp(s_tj).
// Backward: Dsum_t = dout_t . o_t, dS_tj = P_tj (dout_t . v_j - Dsum_t), P_tj = exp(s_tj - lse_t),
//           dq_t = scale sum_j dS_tj k_j,
//           dk_j = scale sum_{h in group} sum_{t >= j} dS_tj q_t,  dv_j = sum_{h in group} sum_{t >= j} P_tj dout_t.
//
// One invocation owns one row; the [T, T] score matrix never exists anywhere:
//   attention_forward        (b, h, t): walks keys j <= past + t once with an online softmax (running max m
//                            and sum l, the output accumulator rescaled whenever m grows), then writes
//                            o_t = acc / l and lse_t = m + log(l).
//   attention_backward_dq    (b, h, t): Dsum_t = dout_t . o_t, stored in stats for the next pass, then
//                            walks keys j <= t recomputing P_tj from lse_t (no second softmax) and
//                            accumulates dq_t.
//   attention_backward_dkdv  (b, g, j): walks the H/KV query heads of its group and queries t >= j,
//                            accumulating dk_j and dv_j itself, so neither atomics nor a second
//                            reduction pass are needed. It reads Dsum, so it runs after the dq pass.
// The row's own vectors (q_t and dout_t, or k_j and v_j) and its accumulators live in private
// arrays of DMAX = 128 entries (so D <= 128), loaded once per row; the other side's rows are read
// straight from storage. Rows are a flattened 1-D grid of 64-wide workgroups.
//
// Why this version: it has no workgroup memory and no workgroupBarrier(). On SwiftShader (the CPU
// Vulkan the tests and Node training run on) every barrier is a fiber switch, and the previous
// one-workgroup-per-row kernel spent most of a stories260K training step in them; with small
// head_dim (D = 8 there) a row is too little work to share across a workgroup anyway. GPUs take the
// tiled kernels of attention-tiled.wgsl instead (blocks of rows staged in workgroup memory).

const WG: u32 = 64u;
const DMAX: u32 = 128u;
// Stands in for -inf (WGSL does not promise infinities); exp(NEG - s) underflows to 0.
const NEG: f32 = -1.0e30;

struct Params { B: u32, T: u32, H: u32, KV: u32, D: u32, scale: f32, past: u32, S: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

fn flatIndex(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn attention_forward(
  @builtin(global_invocation_id) gid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let row = flatIndex(gid, nwg);
  if (row >= p.B * p.H * p.T) { return; }
  let t = row % p.T;
  let h = (row / p.T) % p.H;
  let b = row / (p.T * p.H);
  let g = h / (p.H / p.KV);
  let qBase = (b * p.T + t) * p.H * p.D + h * p.D;
  let kvStride = p.KV * p.D;
  let kvBase = b * p.S * kvStride + g * p.D;

  var qs: array<f32, DMAX>;
  var acc: array<f32, DMAX>;
  for (var d = 0u; d < p.D; d++) {
    qs[d] = q[qBase + d] * p.scale;
    acc[d] = 0.0;
  }

  var m = NEG;
  var l = 0.0;
  for (var j = 0u; j <= p.past + t; j++) {
    let base = kvBase + j * kvStride;
    var s = 0.0;
    for (var d = 0u; d < p.D; d++) { s += qs[d] * k[base + d]; }
    if (s <= m) {
      let pj = exp(s - m);
      l += pj;
      for (var d = 0u; d < p.D; d++) { acc[d] += pj * v[base + d]; }
    } else {
      // New running max: rescale what was summed so far (alpha = 0 at the first key), P_j = 1.
      let alpha = exp(m - s);
      l = l * alpha + 1.0;
      for (var d = 0u; d < p.D; d++) { acc[d] = acc[d] * alpha + v[base + d]; }
      m = s;
    }
  }

  let inv = 1.0 / l;
  for (var d = 0u; d < p.D; d++) { out[qBase + d] = acc[d] * inv; }
  stats[row] = m + log(l);
}

@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read> o: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<f32>;
@group(0) @binding(9) var<storage, read_write> dk: array<f32>;
@group(0) @binding(10) var<storage, read_write> dv: array<f32>;

// Also computes Dsum_t for its own row and stores it in stats for the dk/dv pass, which runs after
// it: a separate Dsum pass would only re-read dout and o.
@compute @workgroup_size(WG)
fn attention_backward_dq(
  @builtin(global_invocation_id) gid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let rows = p.B * p.H * p.T;
  let row = flatIndex(gid, nwg);
  if (row >= rows) { return; }
  let t = row % p.T;
  let h = (row / p.T) % p.H;
  let b = row / (p.T * p.H);
  let g = h / (p.H / p.KV);
  let qBase = (b * p.T + t) * p.H * p.D + h * p.D;
  let kvStride = p.KV * p.D;
  let kvBase = b * p.T * kvStride + g * p.D;

  var qs: array<f32, DMAX>;
  var dO: array<f32, DMAX>;
  var acc: array<f32, DMAX>;
  var dsum = 0.0;
  for (var d = 0u; d < p.D; d++) {
    qs[d] = q[qBase + d] * p.scale;
    dO[d] = dout[qBase + d];
    acc[d] = 0.0;
    dsum += dO[d] * o[qBase + d];
  }
  stats[rows + row] = dsum;
  let lse = stats[row];

  for (var j = 0u; j <= t; j++) {
    let base = kvBase + j * kvStride;
    var s = 0.0;
    var dp = 0.0;
    for (var d = 0u; d < p.D; d++) {
      s += qs[d] * k[base + d];
      dp += dO[d] * v[base + d];
    }
    let ds = exp(s - lse) * (dp - dsum);
    for (var d = 0u; d < p.D; d++) { acc[d] += ds * k[base + d]; }
  }

  for (var d = 0u; d < p.D; d++) { dq[qBase + d] = p.scale * acc[d]; }
}

@compute @workgroup_size(WG)
fn attention_backward_dkdv(
  @builtin(global_invocation_id) gid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
) {
  let rows = p.B * p.H * p.T;
  let row = flatIndex(gid, nwg);
  if (row >= p.B * p.KV * p.T) { return; }
  let j = row % p.T;
  let g = (row / p.T) % p.KV;
  let b = row / (p.T * p.KV);
  let rep = p.H / p.KV;
  let kvBase = (b * p.T + j) * p.KV * p.D + g * p.D;
  let qStride = p.H * p.D;

  var ks: array<f32, DMAX>;
  var vj: array<f32, DMAX>;
  var accK: array<f32, DMAX>;
  var accV: array<f32, DMAX>;
  for (var d = 0u; d < p.D; d++) {
    ks[d] = k[kvBase + d] * p.scale;
    vj[d] = v[kvBase + d];
    accK[d] = 0.0;
    accV[d] = 0.0;
  }

  for (var h = g * rep; h < (g + 1u) * rep; h++) {
    let statRow = (b * p.H + h) * p.T;
    let qBase = b * p.T * qStride + h * p.D;
    for (var t = j; t < p.T; t++) {
      let base = qBase + t * qStride;
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < p.D; d++) {
        s += q[base + d] * ks[d];
        dp += dout[base + d] * vj[d];
      }
      let pt = exp(s - stats[statRow + t]);
      let ds = pt * (dp - stats[rows + statRow + t]);
      for (var d = 0u; d < p.D; d++) {
        accV[d] += pt * dout[base + d];
        accK[d] += ds * q[base + d];
      }
    }
  }

  for (var d = 0u; d < p.D; d++) {
    dk[kvBase + d] = p.scale * accK[d];
    dv[kvBase + d] = accV[d];
  }
}

// Causal multi-head attention with grouped-query attention (GQA), flash-attention style.
//
// Shapes (token-major, heads contiguous inside a token, m = b * T + t):
//   q, dout, out, dq: [B*T, H*D]      k, v, dk, dv: [B*T, KV*D]
//   stats: [2, B*H*T], row r = (b * H + h) * T + t: stats[r] = lse, stats[B*H*T + r] = Dsum (backward).
// Query head h reads kv head g = h / (H / KV).
//
// Forward:  s_tj = scale * q_t . k_j for j <= t (scale = D^-0.5), P = softmax_j(s), o_t = sum_j P_tj v_j,
//           lse_t = log sum_j exp(s_tj).
// Backward: Dsum_t = dout_t . o_t, dS_tj = P_tj (dout_t . v_j - Dsum_t), P_tj = exp(s_tj - lse_t),
//           dq_t = scale sum_j dS_tj k_j,
//           dk_j = scale sum_{h in group} sum_{t >= j} dS_tj q_t,  dv_j = sum_{h in group} sum_{t >= j} P_tj dout_t.
//
// The [T, T] score matrix never reaches global memory: every entry point walks its keys (or queries)
// in chunks of WG. One workgroup owns one row: the forward and the dq pass one (b, h, t) query row,
// the dk/dv pass one (b, g, j) key row, summing over the H/KV query heads of its group itself so
// dk/dv need neither atomics nor a second reduction pass. Inside a chunk, invocation i scores entry
// i of the chunk (a dot product over D), then invocation i accumulates head-dim entries i and i + WG
// over the whole chunk, so D <= 2 * WG = 128. The forward keeps a running max and sum (online
// softmax) and saves lse, which the backward uses to recompute P without a second softmax.

const WG: u32 = 64u;
const DMAX: u32 = 128u;
const PER: u32 = 2u; // DMAX / WG head-dim entries per invocation
// Stands in for -inf (WGSL does not promise infinities); exp(NEG - s) underflows to 0.
const NEG: f32 = -1.0e30;

struct Params { B: u32, T: u32, H: u32, KV: u32, D: u32, scale: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

// The row this workgroup owns (chunk vectors: the query row, pre-scaled, or the key row, pre-scaled).
var<workgroup> rowA: array<f32, DMAX>;
// A second row: dout_t for the dq pass, v_j for the dk/dv pass.
var<workgroup> rowB: array<f32, DMAX>;
var<workgroup> chunkA: array<f32, WG>;
var<workgroup> chunkB: array<f32, WG>;

fn dotK(base: u32) -> f32 {
  var acc = 0.0;
  for (var d = 0u; d < p.D; d++) { acc += rowA[d] * k[base + d]; }
  return acc;
}

fn dotV(base: u32) -> f32 {
  var acc = 0.0;
  for (var d = 0u; d < p.D; d++) { acc += rowB[d] * v[base + d]; }
  return acc;
}

@compute @workgroup_size(WG)
fn attention_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.B * p.H * p.T) { return; }
  let t = row % p.T;
  let h = (row / p.T) % p.H;
  let b = row / (p.T * p.H);
  let g = h / (p.H / p.KV);
  let qBase = (b * p.T + t) * p.H * p.D + h * p.D;
  let kvStride = p.KV * p.D;
  let kvBase = b * p.T * kvStride + g * p.D;

  for (var d = lid; d < p.D; d += WG) { rowA[d] = q[qBase + d] * p.scale; }
  workgroupBarrier();

  var m = NEG;
  var l = 0.0;
  var acc: array<f32, PER>;
  for (var j0 = 0u; j0 <= t; j0 += WG) {
    let n = min(WG, t + 1u - j0);
    var s = NEG;
    if (lid < n) { s = dotK(kvBase + (j0 + lid) * kvStride); }
    chunkA[lid] = s;
    workgroupBarrier();
    var mNew = m;
    for (var jj = 0u; jj < n; jj++) { mNew = max(mNew, chunkA[jj]); }
    chunkB[lid] = exp(s - mNew);
    workgroupBarrier();
    let alpha = exp(m - mNew);
    l *= alpha;
    for (var r = 0u; r < PER; r++) { acc[r] *= alpha; }
    for (var jj = 0u; jj < n; jj++) {
      let pj = chunkB[jj];
      l += pj;
      let vBase = kvBase + (j0 + jj) * kvStride;
      for (var r = 0u; r < PER; r++) {
        let d = lid + r * WG;
        if (d < p.D) { acc[r] += pj * v[vBase + d]; }
      }
    }
    m = mNew;
    // chunkA/chunkB of the next chunk must not be written while slower invocations still read them.
    workgroupBarrier();
  }

  for (var r = 0u; r < PER; r++) {
    let d = lid + r * WG;
    if (d < p.D) { out[qBase + d] = acc[r] / l; }
  }
  if (lid == 0u) { stats[row] = m + log(l); }
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
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = p.B * p.H * p.T;
  let row = wid.x + wid.y * nwg.x;
  if (row >= rows) { return; }
  let t = row % p.T;
  let h = (row / p.T) % p.H;
  let b = row / (p.T * p.H);
  let g = h / (p.H / p.KV);
  let qBase = (b * p.T + t) * p.H * p.D + h * p.D;
  let kvStride = p.KV * p.D;
  let kvBase = b * p.T * kvStride + g * p.D;

  var part = 0.0;
  for (var d = lid; d < p.D; d += WG) {
    rowA[d] = q[qBase + d] * p.scale;
    rowB[d] = dout[qBase + d];
    part += dout[qBase + d] * o[qBase + d];
  }
  chunkA[lid] = part;
  workgroupBarrier();
  var dsum = 0.0;
  for (var i = 0u; i < WG; i++) { dsum += chunkA[i]; }
  if (lid == 0u) { stats[rows + row] = dsum; }
  let lse = stats[row];

  var acc: array<f32, PER>;
  for (var j0 = 0u; j0 <= t; j0 += WG) {
    let n = min(WG, t + 1u - j0);
    if (lid < n) {
      let base = kvBase + (j0 + lid) * kvStride;
      chunkB[lid] = exp(dotK(base) - lse) * (dotV(base) - dsum);
    }
    workgroupBarrier();
    for (var jj = 0u; jj < n; jj++) {
      let ds = chunkB[jj];
      let kBase = kvBase + (j0 + jj) * kvStride;
      for (var r = 0u; r < PER; r++) {
        let d = lid + r * WG;
        if (d < p.D) { acc[r] += ds * k[kBase + d]; }
      }
    }
    workgroupBarrier();
  }

  for (var r = 0u; r < PER; r++) {
    let d = lid + r * WG;
    if (d < p.D) { dq[qBase + d] = p.scale * acc[r]; }
  }
}

@compute @workgroup_size(WG)
fn attention_backward_dkdv(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = p.B * p.H * p.T;
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.B * p.KV * p.T) { return; }
  let j = row % p.T;
  let g = (row / p.T) % p.KV;
  let b = row / (p.T * p.KV);
  let rep = p.H / p.KV;
  let kvBase = (b * p.T + j) * p.KV * p.D + g * p.D;
  let qStride = p.H * p.D;

  for (var d = lid; d < p.D; d += WG) {
    rowA[d] = k[kvBase + d] * p.scale;
    rowB[d] = v[kvBase + d];
  }
  workgroupBarrier();

  var accK: array<f32, PER>;
  var accV: array<f32, PER>;
  for (var h = g * rep; h < (g + 1u) * rep; h++) {
    let statRow = (b * p.H + h) * p.T;
    let qBase = b * p.T * qStride + h * p.D;
    for (var t0 = j; t0 < p.T; t0 += WG) {
      let n = min(WG, p.T - t0);
      if (lid < n) {
        let t = t0 + lid;
        let base = qBase + t * qStride;
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < p.D; d++) {
          s += q[base + d] * rowA[d];
          dp += dout[base + d] * rowB[d];
        }
        let pt = exp(s - stats[statRow + t]);
        chunkA[lid] = pt;
        chunkB[lid] = pt * (dp - stats[rows + statRow + t]);
      }
      workgroupBarrier();
      for (var tt = 0u; tt < n; tt++) {
        let pt = chunkA[tt];
        let ds = chunkB[tt];
        let base = qBase + (t0 + tt) * qStride;
        for (var r = 0u; r < PER; r++) {
          let d = lid + r * WG;
          if (d < p.D) {
            accV[r] += pt * dout[base + d];
            accK[r] += ds * q[base + d];
          }
        }
      }
      workgroupBarrier();
    }
  }

  for (var r = 0u; r < PER; r++) {
    let d = lid + r * WG;
    if (d < p.D) {
      dk[kvBase + d] = p.scale * accK[r];
      dv[kvBase + d] = accV[r];
    }
  }
}

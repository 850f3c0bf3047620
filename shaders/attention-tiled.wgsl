// Causal GQA attention, workgroup-tiled (FlashAttention-2 schedule), for GPUs. Same math, shapes and
// stats layout as attention.wgsl (read its header); this file only changes who computes what.
//
// Tiles: a block of BQ query rows or BK key rows of one head, staged in workgroup memory with a
// padded row stride DP = D + 1 (so the column reads of a tile spread over the memory banks). D, BQ
// and BK are pipeline constants, so every loop over them has a fixed trip count and unrolls; the
// wrapper picks BQ and BK per head_dim to fit the device's workgroup storage. 64 invocations per
// workgroup; in a query block invocation lid owns query row r = lid / TQ (TQ = 64 / BQ invocations
// per row) and head dims d = c + TQ * i (c = lid % TQ), in a key block key row j = lid / TK and the
// dims d = c + TK * i.
//   attention_forward_tiled  workgroup (b, h, query block): walks the key blocks up to the block's
//                            last visible key (blocks above the causal diagonal are skipped), each
//                            one staged (k, v), scored (S = scale q k^T, masked), and folded into the
//                            output by an online softmax (running max m and sum l per row); writes
//                            o = acc / l and lse = m + log(l). Also serves the KV-cache forward
//                            (queries at positions past + t, keys read from rows b * S + j).
//   attention_backward_dq_tiled  workgroup (b, h, query block): Dsum_t = dout_t . o_t (stored in
//                            stats for the dk/dv pass), then per key block P = exp(S - lse),
//                            dS = P (dout v^T - Dsum) staged in workgroup memory and dq += dS k.
//   attention_backward_dkdv_tiled  workgroup (b, g, key block): loops over the H / KV query heads of
//                            kv head g and the query blocks at or below the diagonal, recomputes P and
//                            dS for the (query block, key block) pair, and accumulates dv += P^T dout
//                            and dk += dS^T q in registers. A workgroup owns its keys' gradients for
//                            the whole group, so the heads are summed in a fixed order: deterministic,
//                            no atomics, no second reduction pass. It reads Dsum, so it runs after dq.
// Why: the one-invocation-per-row kernels read the other side's rows straight from storage, one
// row per invocation (uncoalesced), keep D-long private arrays (local memory on GPUs), and the
// dk/dv pass has only B * KV * T invocations. Here every k/v (or q/dout) row a block needs is read
// from storage once per block, coalesced, and reused by the whole block. On CPU adapters, where
// each barrier is a fiber switch, the barrier-free kernels stay the default.

const WG: u32 = 64u;
// Longest per-invocation slice of a row (D <= 128 over at least 2 invocations per row): private
// arrays need constant sizes.
const CHUNK: u32 = 64u;
// Stands in for -inf (WGSL does not promise infinities); exp(NEG - m) underflows to 0.
const NEG: f32 = -1.0e30;

override D: u32;
override BQ: u32;
override BK: u32;
override DP: u32 = D + 1u;
override TQ: u32 = WG / BQ;
override TK: u32 = WG / BK;

struct Params { B: u32, T: u32, H: u32, KV: u32, scale: f32, past: u32, S: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;
@group(0) @binding(6) var<storage, read> dout: array<f32>;
@group(0) @binding(7) var<storage, read> o: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<f32>;
@group(0) @binding(9) var<storage, read_write> dk: array<f32>;
@group(0) @binding(10) var<storage, read_write> dv: array<f32>;

var<workgroup> tile_q: array<f32, BQ * DP>;
var<workgroup> tile_do: array<f32, BQ * DP>;
var<workgroup> tile_k: array<f32, BK * DP>;
var<workgroup> tile_v: array<f32, BK * DP>;
// Scores or probabilities, and dS, of one (query block, key block) pair: [BQ, BK + 1].
var<workgroup> tile_s: array<f32, BQ * (BK + 1u)>;
var<workgroup> tile_ds: array<f32, BQ * (BK + 1u)>;
var<workgroup> row_lse: array<f32, BQ>;
var<workgroup> row_dsum: array<f32, BQ>;
var<workgroup> partial: array<f32, WG>;

/** Key and value rows [row0, row0 + BK) of one kv head (row stride `stride`, from `base`) into tile_k, tile_v; rows past `limit` are 0. */
fn stage_k_v(base: u32, stride: u32, row0: u32, limit: u32, lid: u32) {
  for (var e = lid; e < BK * D; e += WG) {
    let j = e / D;
    let d = e % D;
    var kv = vec2f(0.0);
    if (row0 + j < limit) {
      let at = base + (row0 + j) * stride + d;
      kv = vec2f(k[at], v[at]);
    }
    tile_k[j * DP + d] = kv.x;
    tile_v[j * DP + d] = kv.y;
  }
}

/** Query rows [row0, row0 + BQ) of one head (row stride `stride`, from `base`) into tile_q; rows past T are 0. */
fn stage_q(base: u32, stride: u32, row0: u32, lid: u32) {
  for (var e = lid; e < BQ * D; e += WG) {
    let r = e / D;
    let d = e % D;
    var value = 0.0;
    if (row0 + r < p.T) { value = q[base + (row0 + r) * stride + d]; }
    tile_q[r * DP + d] = value;
  }
}

/** The same rows of dout into tile_do. */
fn stage_dout(base: u32, stride: u32, row0: u32, lid: u32) {
  for (var e = lid; e < BQ * D; e += WG) {
    let r = e / D;
    let d = e % D;
    var value = 0.0;
    if (row0 + r < p.T) { value = dout[base + (row0 + r) * stride + d]; }
    tile_do[r * DP + d] = value;
  }
}

/** The workgroup's index in the flattened grid (see Gpu.grid). */
fn group_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(WG)
fn attention_forward_tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let blocks = (p.T + BQ - 1u) / BQ;
  let index = group_index(wid, nwg);
  if (index >= p.B * p.H * blocks) { return; }
  let q0 = (index % blocks) * BQ;
  let h = (index / blocks) % p.H;
  let b = index / (blocks * p.H);
  let kvBase = b * p.S * p.KV * D + (h / (p.H / p.KV)) * D;
  stage_q((b * p.T) * p.H * D + h * D, p.H * D, q0, lid);
  let r = lid / TQ;
  let c = lid % TQ;
  var acc: array<f32, CHUNK>;
  var m = NEG;
  var l = 0.0;
  // Keys [0, keyEnd) are visible to some query of the block.
  let keyEnd = p.past + min(q0 + BQ, p.T);
  for (var k0 = 0u; k0 < keyEnd; k0 += BK) {
    workgroupBarrier();
    stage_k_v(kvBase, p.KV * D, k0, keyEnd, lid);
    workgroupBarrier();
    for (var jj = 0u; jj < (BK + TQ - 1u) / TQ; jj++) {
      let j = c + TQ * jj;
      if (j < BK) {
        var s = NEG;
        if (k0 + j <= p.past + q0 + r) {
          var dot = 0.0;
          for (var d = 0u; d < D; d++) { dot += tile_q[r * DP + d] * tile_k[j * DP + d]; }
          s = p.scale * dot;
        }
        tile_s[r * (BK + 1u) + j] = s;
      }
    }
    workgroupBarrier();
    // Every invocation of row r reads the same scores in the same order, so they agree bitwise.
    var mNew = m;
    for (var j = 0u; j < BK; j++) { mNew = max(mNew, tile_s[r * (BK + 1u) + j]); }
    let alpha = exp(m - mNew);
    l *= alpha;
    for (var i = 0u; i < (D + TQ - 1u) / TQ; i++) { acc[i] *= alpha; }
    for (var j = 0u; j < BK; j++) {
      let s = tile_s[r * (BK + 1u) + j];
      let pj = select(0.0, exp(s - mNew), s > NEG);
      l += pj;
      for (var i = 0u; i < (D + TQ - 1u) / TQ; i++) {
        let d = c + TQ * i;
        if (d < D) { acc[i] += pj * tile_v[j * DP + d]; }
      }
    }
    m = mNew;
  }
  let t = q0 + r;
  if (t >= p.T) { return; }
  let outBase = (b * p.T + t) * p.H * D + h * D;
  let inv = 1.0 / l;
  for (var i = 0u; i < (D + TQ - 1u) / TQ; i++) {
    let d = c + TQ * i;
    if (d < D) { out[outBase + d] = acc[i] * inv; }
  }
  if (c == 0u) { stats[(b * p.H + h) * p.T + t] = m + log(l); }
}

@compute @workgroup_size(WG)
fn attention_backward_dq_tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = p.B * p.H * p.T;
  let blocks = (p.T + BQ - 1u) / BQ;
  let index = group_index(wid, nwg);
  if (index >= p.B * p.H * blocks) { return; }
  let q0 = (index % blocks) * BQ;
  let h = (index / blocks) % p.H;
  let b = index / (blocks * p.H);
  let qBase = (b * p.T) * p.H * D + h * D;
  let kvBase = b * p.T * p.KV * D + (h / (p.H / p.KV)) * D;
  stage_q(qBase, p.H * D, q0, lid);
  stage_dout(qBase, p.H * D, q0, lid);
  workgroupBarrier();
  let r = lid / TQ;
  let c = lid % TQ;
  let t = q0 + r;
  let statRow = (b * p.H + h) * p.T + t;
  // Dsum_t: each invocation of the row sums its dims, then all add the row's partials in one order.
  var part = 0.0;
  if (t < p.T) {
    for (var i = 0u; i < (D + TQ - 1u) / TQ; i++) {
      let d = c + TQ * i;
      if (d < D) { part += tile_do[r * DP + d] * o[qBase + t * p.H * D + d]; }
    }
  }
  partial[lid] = part;
  workgroupBarrier();
  var dsum = 0.0;
  for (var cc = 0u; cc < TQ; cc++) { dsum += partial[r * TQ + cc]; }
  var lse = 0.0;
  if (t < p.T) {
    lse = stats[statRow];
    if (c == 0u) { stats[rows + statRow] = dsum; }
  }

  var acc: array<f32, CHUNK>;
  let keyEnd = min(q0 + BQ, p.T);
  for (var k0 = 0u; k0 < keyEnd; k0 += BK) {
    workgroupBarrier();
    stage_k_v(kvBase, p.KV * D, k0, keyEnd, lid);
    workgroupBarrier();
    for (var jj = 0u; jj < (BK + TQ - 1u) / TQ; jj++) {
      let j = c + TQ * jj;
      if (j < BK) {
        var ds = 0.0;
        if (k0 + j <= t) {
          var s = 0.0;
          var dp = 0.0;
          for (var d = 0u; d < D; d++) {
            s += tile_q[r * DP + d] * tile_k[j * DP + d];
            dp += tile_do[r * DP + d] * tile_v[j * DP + d];
          }
          ds = exp(p.scale * s - lse) * (dp - dsum);
        }
        tile_ds[r * (BK + 1u) + j] = ds;
      }
    }
    workgroupBarrier();
    for (var j = 0u; j < BK; j++) {
      let ds = tile_ds[r * (BK + 1u) + j];
      for (var i = 0u; i < (D + TQ - 1u) / TQ; i++) {
        let d = c + TQ * i;
        if (d < D) { acc[i] += ds * tile_k[j * DP + d]; }
      }
    }
  }
  if (t >= p.T) { return; }
  for (var i = 0u; i < (D + TQ - 1u) / TQ; i++) {
    let d = c + TQ * i;
    if (d < D) { dq[qBase + t * p.H * D + d] = p.scale * acc[i]; }
  }
}

@compute @workgroup_size(WG)
fn attention_backward_dkdv_tiled(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let rows = p.B * p.H * p.T;
  let blocks = (p.T + BK - 1u) / BK;
  let index = group_index(wid, nwg);
  if (index >= p.B * p.KV * blocks) { return; }
  let k0 = (index % blocks) * BK;
  let g = (index / blocks) % p.KV;
  let b = index / (blocks * p.KV);
  let kvBase = b * p.T * p.KV * D + g * D;
  stage_k_v(kvBase, p.KV * D, k0, p.T, lid);
  let j = lid / TK;
  let c = lid % TK;
  var accK: array<f32, CHUNK>;
  var accV: array<f32, CHUNK>;
  let rep = p.H / p.KV;
  for (var h = g * rep; h < (g + 1u) * rep; h++) {
    let qBase = (b * p.T) * p.H * D + h * D;
    let statBase = (b * p.H + h) * p.T;
    // Query blocks wholly above the diagonal (every t < k0) see none of these keys.
    for (var q0 = (k0 / BQ) * BQ; q0 < p.T; q0 += BQ) {
      workgroupBarrier();
      stage_q(qBase, p.H * D, q0, lid);
      stage_dout(qBase, p.H * D, q0, lid);
      for (var r = lid; r < BQ; r += WG) {
        var ld = vec2f(0.0);
        if (q0 + r < p.T) { ld = vec2f(stats[statBase + q0 + r], stats[rows + statBase + q0 + r]); }
        row_lse[r] = ld.x;
        row_dsum[r] = ld.y;
      }
      workgroupBarrier();
      for (var rr = 0u; rr < (BQ + TK - 1u) / TK; rr++) {
        let r = c + TK * rr;
        if (r < BQ) {
          var pt = 0.0;
          var ds = 0.0;
          if (k0 + j <= q0 + r && q0 + r < p.T) {
            var s = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < D; d++) {
              s += tile_q[r * DP + d] * tile_k[j * DP + d];
              dp += tile_do[r * DP + d] * tile_v[j * DP + d];
            }
            pt = exp(p.scale * s - row_lse[r]);
            ds = pt * (dp - row_dsum[r]);
          }
          tile_s[r * (BK + 1u) + j] = pt;
          tile_ds[r * (BK + 1u) + j] = ds;
        }
      }
      workgroupBarrier();
      for (var r = 0u; r < BQ; r++) {
        let pt = tile_s[r * (BK + 1u) + j];
        let ds = tile_ds[r * (BK + 1u) + j];
        for (var i = 0u; i < (D + TK - 1u) / TK; i++) {
          let d = c + TK * i;
          if (d < D) {
            accV[i] += pt * tile_do[r * DP + d];
            accK[i] += ds * tile_q[r * DP + d];
          }
        }
      }
    }
  }
  if (k0 + j >= p.T) { return; }
  let at = kvBase + (k0 + j) * p.KV * D;
  for (var i = 0u; i < (D + TK - 1u) / TK; i++) {
    let d = c + TK * i;
    if (d < D) {
      dk[at + d] = p.scale * accK[i];
      dv[at + d] = accV[i];
    }
  }
}

// Softmax cross-entropy over the vocabulary, fused with lm_head chunk by chunk so that the
// [M, V] logits never exist whole: src/kernels/cross-entropy.ts computes logits = hidden E_c^T for
// one chunk of vocabulary rows [col0, col0 + len) into an [M, len] scratch with matmul.wgsl, then:
// Forward, per chunk (cross_entropy_forward_chunk, one workgroup per row m): online log-sum-exp
//   stats[m] = (running max mx, running sum of exp(l - mx), logit of the target), merged as
//   mx' = max(mx, cmx), sum' = sum exp(mx - mx') + csum exp(cmx - mx'); each invocation folds a
//   strided share of the chunk the same way, then a tree reduction merges the 256 partials.
// Forward, finish (cross_entropy_forward_finish, one invocation per row):
//   lse = mx + log(sum), row_loss = lse - logit[target] (0 for ignored rows), stats[m].w = lse.
// Training computes dHidden in the same single pass over the chunks, so no logit is computed twice.
//   dHidden = s (softmax(l) E - E[target]) = s (sum_v exp(l_v - mx) E_v / sum - E[target]), which is
//   flash attention's online softmax with the lm_head rows as the values. Per chunk
//   (cross_entropy_online_chunk, one workgroup per row) the forward merge above also overwrites the
//   chunk's logits with P = exp(l - mx') (0 for ignored rows) and stores the factor exp(mx - mx') in
//   stats[m].w; cross_entropy_scale_rows then rescales the rows accumulated so far by it, and
//   matmul.wgsl adds P E_c. After the last chunk cross_entropy_scale_rows multiplies row m by
//   s / sum (0 for ignored rows), and embedding.wgsl's gather subtracts s E[target].
//   A vocabulary in one chunk needs none of this: after the forward its logits are still in the
//   scratch, so cross_entropy_backward_chunk turns them into dlogits in place.
// A target outside [0, V) (the caller's -100) marks an ignored row.
// stats: [M, 4] f32 = (max, sum, target logit, lse; or the last chunk's rescale factor while training
// accumulates). targets: [M] i32.

struct Params {
  rows: u32,
  len: u32,
  col0: u32,
  first: u32,
  vocab: u32,
  loss_scale: f32,
  // cross_entropy_scale_rows: 0 scales row m by the chunk's factor stats[m].w, 1 by loss_scale / sum
  // (0 for ignored rows), the last step.
  last: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_loss: array<f32>;
// [rows, len]: dHidden, for cross_entropy_scale_rows.
@group(0) @binding(5) var<storage, read_write> grad_rows: array<f32>;

const WG = 256u;
// exp(LOWEST - finite) underflows to 0, so an empty partial merges away without inf - inf.
const LOWEST = -3.4028234e38;

var<workgroup> part_max: array<f32, WG>;
var<workgroup> part_sum: array<f32, WG>;

fn target_token(row: u32) -> u32 {
  let t = targets[row];
  if (t < 0 || u32(t) >= p.vocab) { return 0xffffffffu; }
  return u32(t);
}

var<workgroup> row_max: f32;

// Merges this chunk into row `row`'s stats (the forward, per chunk, above) and leaves the merged max
// in row_max for every invocation. Also stores the factor exp(mx - mx') in stats[m].w, which only
// training's accumulation reads (cross_entropy_forward_finish overwrites it with the lse).
fn fold_chunk(row: u32, t: u32) {
  let base = row * p.len;
  var mx = LOWEST;
  var sum = 0.0;
  for (var j = t; j < p.len; j += WG) {
    let l = logits[base + j];
    if (l > mx) {
      sum = sum * exp(mx - l) + 1.0;
      mx = l;
    } else {
      sum += exp(l - mx);
    }
  }
  part_max[t] = mx;
  part_sum[t] = sum;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (t < w) {
      let m2 = max(part_max[t], part_max[t + w]);
      part_sum[t] = part_sum[t] * exp(part_max[t] - m2) + part_sum[t + w] * exp(part_max[t + w] - m2);
      part_max[t] = m2;
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let s = row * 4u;
    var old_max = LOWEST;
    var old_sum = 0.0;
    var target_logit = 0.0;
    if (p.first == 0u) {
      old_max = stats[s];
      old_sum = stats[s + 1u];
      target_logit = stats[s + 2u];
    }
    let new_max = max(old_max, part_max[0]);
    stats[s] = new_max;
    stats[s + 1u] = old_sum * exp(old_max - new_max) + part_sum[0] * exp(part_max[0] - new_max);
    let token = target_token(row);
    if (token != 0xffffffffu && token >= p.col0 && token - p.col0 < p.len) {
      target_logit = logits[base + token - p.col0];
    }
    stats[s + 2u] = target_logit;
    stats[s + 3u] = exp(old_max - new_max);
    row_max = new_max;
  }
  workgroupBarrier();
}

@compute @workgroup_size(256)
fn cross_entropy_forward_chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                               @builtin(local_invocation_index) t: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  fold_chunk(row, t);
}

@compute @workgroup_size(64)
fn cross_entropy_forward_finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= p.rows) { return; }
  let s = row * 4u;
  let lse = stats[s] + log(stats[s + 1u]);
  stats[s + 3u] = lse;
  row_loss[row] = select(lse - stats[s + 2u], 0.0, target_token(row) == 0xffffffffu);
}

// The forward merge, then the chunk's logits become P = exp(l - mx'). fold_chunk's last barrier
// orders its read of the target logit before these writes.
@compute @workgroup_size(256)
fn cross_entropy_online_chunk(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                              @builtin(local_invocation_index) t: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  fold_chunk(row, t);
  let new_max = row_max;
  let ignored = target_token(row) == 0xffffffffu;
  let base = row * p.len;
  for (var j = t; j < p.len; j += WG) {
    logits[base + j] = select(exp(logits[base + j] - new_max), 0.0, ignored);
  }
}

@compute @workgroup_size(256)
fn cross_entropy_scale_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.len) { return; }
  let row = i / p.len;
  if (p.last == 0u) {
    grad_rows[i] *= stats[row * 4u + 3u];
    return;
  }
  let ignored = target_token(row) == 0xffffffffu;
  grad_rows[i] = select(grad_rows[i] * (p.loss_scale / stats[row * 4u + 1u]), 0.0, ignored);
}

// One chunk holds the whole vocabulary: its logits are still in the scratch and the lse is known,
// so they become dlogits = (exp(l - lse) - [col0 + j == target]) * loss_scale in place (0 for
// ignored rows), one invocation per scratch element, and matmul.wgsl writes dHidden = dlogits E.
@compute @workgroup_size(256)
fn cross_entropy_backward_chunk(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.len) { return; }
  let row = i / p.len;
  let token = target_token(row);
  if (token == 0xffffffffu) {
    logits[i] = 0.0;
    return;
  }
  let onehot = select(0.0, 1.0, p.col0 + i % p.len == token);
  logits[i] = (exp(logits[i] - stats[row * 4u + 3u]) - onehot) * p.loss_scale;
}

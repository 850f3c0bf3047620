// RMSNorm without bias, as Hugging Face Llama computes it in f32.
// Forward:  rstd[m] = 1 / sqrt(mean_c(x[m, c]^2) + eps),  y[m, c] = x[m, c] * rstd[m] * w[c].
// Fused residual: h[m, c] = x[m, c] + branch[m, c] (the residual add before the post-attention
//           norm), then y = rmsnorm(h) as above; h is written too (the stream, and what the
//           backward reads). One pass instead of a residual kernel and a norm kernel.
// Backward: with g[c] = dy[m, c] * w[c] and r = rstd[m],
//           dx[m, c] += r * (g[c] - x[m, c] * r^2 * sum_k(g[k] * x[m, k]) / C).
//           It adds because in the model dx is the residual stream gradient, which the skip path
//           also feeds. The weight is frozen in LoRA training, so no weight gradient is computed.
// Shapes: x, branch, h, y, dy, dx [M, C]; w [C]; rstd [M] (written by forward, read by backward).
// Two schedules. `*_rows`: one invocation per row, no barriers: on CPU Vulkan (SwiftShader), where
// every barrier is a fiber switch, this is much the cheapest for the usual widths (C up to
// ROW_MAX_C). The others (GPUs, and wide rows anywhere): one workgroup of WG invocations per row
// (a pipeline constant, a power of two), each striding over the row so that neighbours read
// neighbouring columns (coalesced), the partial sums combined by row_sum. row_sum is not in this
// file: the wrapper appends row-sum-subgroup.wgsl (subgroup sums, where the device has the
// feature) or row-sum-workgroup.wgsl (a tree in workgroup memory). Rows may be split over x and y
// (see Gpu.grid).

struct Params { M: u32, C: u32, eps: f32 }

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> rstd_saved: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read> branch: array<f32>;
@group(0) @binding(9) var<storage, read_write> h: array<f32>;

fn row_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x;
}

fn rows_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

@compute @workgroup_size(WG)
fn rmsnorm_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_index(wid, nwg);
  if (row >= p.M) { return; }
  let base = row * p.C;
  var sum_sq = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = x[base + c];
    sum_sq += v * v;
  }
  let r = inverseSqrt(row_sum(lid, sum_sq) / f32(p.C) + p.eps);
  if (lid == 0u) { rstd[row] = r; }
  for (var c = lid; c < p.C; c += WG) {
    y[base + c] = x[base + c] * r * w[c];
  }
}

@compute @workgroup_size(64)
fn rmsnorm_forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = rows_index(gid, nwg);
  if (row >= p.M) { return; }
  let base = row * p.C;
  var sum_sq = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let v = x[base + c];
    sum_sq += v * v;
  }
  let r = inverseSqrt(sum_sq / f32(p.C) + p.eps);
  rstd[row] = r;
  for (var c = 0u; c < p.C; c++) {
    y[base + c] = x[base + c] * r * w[c];
  }
}

@compute @workgroup_size(WG)
fn residual_rmsnorm_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_index(wid, nwg);
  if (row >= p.M) { return; }
  let base = row * p.C;
  var sum_sq = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = x[base + c] + branch[base + c];
    h[base + c] = v;
    sum_sq += v * v;
  }
  let r = inverseSqrt(row_sum(lid, sum_sq) / f32(p.C) + p.eps);
  if (lid == 0u) { rstd[row] = r; }
  // Each invocation reads back only the h elements it wrote itself.
  for (var c = lid; c < p.C; c += WG) {
    y[base + c] = h[base + c] * r * w[c];
  }
}

@compute @workgroup_size(64)
fn residual_rmsnorm_forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = rows_index(gid, nwg);
  if (row >= p.M) { return; }
  let base = row * p.C;
  var sum_sq = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let v = x[base + c] + branch[base + c];
    h[base + c] = v;
    sum_sq += v * v;
  }
  let r = inverseSqrt(sum_sq / f32(p.C) + p.eps);
  rstd[row] = r;
  for (var c = 0u; c < p.C; c++) {
    y[base + c] = h[base + c] * r * w[c];
  }
}

@compute @workgroup_size(WG)
fn rmsnorm_backward_accumulate(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_index(wid, nwg);
  if (row >= p.M) { return; }
  let base = row * p.C;
  var dot = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    dot += dy[base + c] * w[c] * x[base + c];
  }
  let r = rstd_saved[row];
  let k = r * r * row_sum(lid, dot) / f32(p.C);
  for (var c = lid; c < p.C; c += WG) {
    dx[base + c] = dx[base + c] + r * (dy[base + c] * w[c] - x[base + c] * k);
  }
}

@compute @workgroup_size(64)
fn rmsnorm_backward_accumulate_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = rows_index(gid, nwg);
  if (row >= p.M) { return; }
  let base = row * p.C;
  var dot = 0.0;
  for (var c = 0u; c < p.C; c++) {
    dot += dy[base + c] * w[c] * x[base + c];
  }
  let r = rstd_saved[row];
  let k = r * r * dot / f32(p.C);
  for (var c = 0u; c < p.C; c++) {
    dx[base + c] = dx[base + c] + r * (dy[base + c] * w[c] - x[base + c] * k);
  }
}

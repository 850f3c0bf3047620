// RMSNorm without bias, as Hugging Face Llama computes it in f32.
// Forward:  rstd[m] = 1 / sqrt(mean_c(x[m, c]^2) + eps),  y[m, c] = x[m, c] * rstd[m] * w[c].
// Backward: with g[c] = dy[m, c] * w[c] and r = rstd[m],
//           dx[m, c] += r * (g[c] - x[m, c] * r^2 * sum_k(g[k] * x[m, k]) / C).
//           It adds because in the model dx is the residual stream gradient, which the skip path
//           also feeds. The weight is frozen in LoRA training, so no weight gradient is computed.
// Shapes: x, y, dy, dx [M, C]; w [C]; rstd [M] (written by forward, read by backward).
// Two schedules. `*_rows`: one invocation per row, no barriers; for the usual widths (C up to
// ROW_MAX_C) this is cheapest everywhere and much faster on CPU Vulkan (SwiftShader), where every
// barrier is a fiber switch. The others: one workgroup per row, each invocation strides over the
// row and a tree reduction in workgroup memory combines the partial sums, so very wide rows still
// use a whole workgroup. Rows may be split over x and y (see Gpu.grid).

struct Params { M: u32, C: u32, eps: f32 }

const WG = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

var<workgroup> partial: array<f32, WG>;

// Sums `value` over the workgroup; every invocation gets the total.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { partial[lid] = partial[lid] + partial[lid + stride]; }
    workgroupBarrier();
  }
  return partial[0];
}

@compute @workgroup_size(WG)
fn rmsnorm_forward(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.M) { return; }
  let base = row * p.C;
  var sum_sq = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = x[base + c];
    sum_sq += v * v;
  }
  let r = inverseSqrt(workgroup_sum(lid, sum_sq) / f32(p.C) + p.eps);
  if (lid == 0u) { rstd[row] = r; }
  for (var c = lid; c < p.C; c += WG) {
    y[base + c] = x[base + c] * r * w[c];
  }
}

@compute @workgroup_size(64)
fn rmsnorm_forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
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

@group(0) @binding(5) var<storage, read> dy: array<f32>;
@group(0) @binding(6) var<storage, read> rstd_saved: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_backward_accumulate(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.M) { return; }
  let base = row * p.C;
  var dot = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    dot += dy[base + c] * w[c] * x[base + c];
  }
  let r = rstd_saved[row];
  let k = r * r * workgroup_sum(lid, dot) / f32(p.C);
  for (var c = lid; c < p.C; c += WG) {
    dx[base + c] = dx[base + c] + r * (dy[base + c] * w[c] - x[base + c] * k);
  }
}

@compute @workgroup_size(64)
fn rmsnorm_backward_accumulate_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
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

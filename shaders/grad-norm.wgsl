// Global gradient L2 norm and clip coefficient, as torch.nn.utils.clip_grad_norm_:
//   norm = sqrt(sum_i g[i]^2),   coef = min(1, max_norm / (norm + 1e-6)),   coef = 1 when max_norm = 0.
// grads: [n] (the flat gradient buffer of all trainable tensors; its zero padding adds nothing),
// partials: [ceil(n / 4096)] scratch, out: [2] = (norm, coef).
// The result stays on the GPU so the optimizer can read coef in the same submit: a CPU readback
// per step would stall the training loop. Two passes with a fixed summation order (no atomics),
// so the norm is bitwise reproducible:
//   grad_norm_partials: one workgroup per 4096 consecutive elements; each invocation sums the
//     squares of 16 of them (strided by 256 so neighbouring invocations load neighbouring words),
//     then a tree reduction in workgroup memory gives partials[workgroup].
//   grad_norm_finalize: a single workgroup sums all partials (strided, then a tree) and writes out.

const WG = 256u;
const ITEMS = 16u;

// count = number of partials; max_norm = 0 means no clipping (the wrapper maps <= 0 and Infinity to 0).
struct Params { n: u32, count: u32, max_norm: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> sums: array<f32, WG>;

// Sums `sums[0..WG)` into sums[0]; every invocation of the workgroup must call it.
fn reduce_workgroup(lid: u32) -> f32 {
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) { sums[lid] = sums[lid] + sums[lid + stride]; }
  }
  workgroupBarrier();
  return sums[0];
}

@compute @workgroup_size(WG)
fn grad_norm_partials(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let wg = wid.x + wid.y * nwg.x;
  let base = wg * WG * ITEMS + lid;
  var acc = 0.0;
  for (var k = 0u; k < ITEMS; k++) {
    let i = base + k * WG;
    if (i < p.n) {
      let g = grads[i];
      acc += g * g;
    }
  }
  sums[lid] = acc;
  let total = reduce_workgroup(lid);
  // Gpu.grid may round the workgroup count up; the extra workgroups own no partial.
  if (lid == 0u && wg < p.count) { partials[wg] = total; }
}

@compute @workgroup_size(WG)
fn grad_norm_finalize(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.count; i += WG) { acc += partials[i]; }
  sums[lid] = acc;
  let norm = sqrt(reduce_workgroup(lid));
  if (lid == 0u) {
    out[0] = norm;
    out[1] = select(1.0, min(1.0, p.max_norm / (norm + 1e-6)), p.max_norm > 0.0);
  }
}

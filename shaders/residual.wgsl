// Residual connection.
// Forward:  y[i] = a[i] + b[i]                      (h = x + attn(x), y = h + mlp(h))
// Backward: d a = d y and d b = d y, so there is no backward kernel: the model hands the stream's
//           gradient to the branch as it is, and the branch's backward kernels add their share of
//           d x into it (rmsnorm_backward_accumulate, matmul with beta = 1).
// One invocation per element; the grid may be split over x and y (see Gpu.grid).

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn residual_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  y[i] = a[i] + b[i];
}

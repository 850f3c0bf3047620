// Residual connection.
// Forward:  y[i] = a[i] + b[i]                      (h = x + attn(x), y = h + mlp(h))
// Backward: d a = d y and d b = d y, so there is no backward kernel: the model hands the stream's
//           gradient to the branch as it is, and the branch's backward kernels add their share of
//           d x into it (rmsnorm_backward_accumulate, matmul with beta = 1).
// residual_forward_vec4: one invocation per 4 elements (a4, b4, y4 bind the same buffers as
// vec4 arrays): a quarter of the invocations, 16-byte loads and stores. It covers the first
// 4 * (n / 4) elements; residual_forward, one invocation per element from `start`, takes the rest
// (or everything, start = 0). The grid may be split over x and y (see Gpu.grid).

struct Params { n: u32, start: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<vec4f>;
@group(0) @binding(5) var<storage, read> b4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4f>;

@compute @workgroup_size(256)
fn residual_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = p.start + gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  y[i] = a[i] + b[i];
}

@compute @workgroup_size(256)
fn residual_forward_vec4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n / 4u) { return; }
  y4[i] = a4[i] + b4[i];
}

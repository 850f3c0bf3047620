// SwiGLU gate of the Llama MLP: out = silu(gate) * up, silu(g) = g * sigmoid(g).
// Backward, with s = sigmoid(g):  d gate = dout * up * s * (1 + g * (1 - s)),  d up = dout * silu(g).
// Both gradients overwrite: gate and up are fresh projections that nothing else feeds.
// Shapes: every buffer [n] (n = M * intermediate). One invocation per element; the grid may be
// split over x and y (see Gpu.grid).
// sigmoid and 1 - sigmoid are both formed from exp(-|g|), which never overflows: WGSL lets an
// implementation assume no infinities, so exp(-g) for g = -100 could give anything.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// (sigmoid(g), 1 - sigmoid(g)) without cancellation or overflow for any finite g.
fn sigmoid_pair(g: f32) -> vec2f {
  let e = exp(-abs(g));
  let inv = 1.0 / (1.0 + e);
  if (g >= 0.0) { return vec2f(inv, e * inv); }
  return vec2f(e * inv, inv);
}

@compute @workgroup_size(256)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let g = gate[i];
  out[i] = g * sigmoid_pair(g).x * up[i];
}

@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(6) var<storage, read_write> dup: array<f32>;

@compute @workgroup_size(256)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let g = gate[i];
  let s = sigmoid_pair(g);
  let d = dout[i];
  dgate[i] = d * up[i] * s.x * (1.0 + g * s.y);
  dup[i] = d * g * s.x;
}

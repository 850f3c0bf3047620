// SwiGLU gate of the Llama MLP: out = silu(gate) * up, silu(g) = g * sigmoid(g).
// Backward, with s = sigmoid(g):  d gate = dout * up * s * (1 + g * (1 - s)),  d up = dout * silu(g).
// The backward runs in place: d gate overwrites gate and d up overwrites up. Backward needs gate and
// up only here, and gate_proj's and up_proj's backward then read their gradients from the same
// buffers, so the layer needs no [M, intermediate] gradient buffers of its own. Each invocation reads
// its element of gate and up before it writes that element, and no invocation touches another's.
// Shapes: every buffer [n] (n = M * intermediate). swiglu_forward / swiglu_backward_inplace: one
// invocation per element from `start`; the *_vec4 entry points: one per 4 elements (the *4 bindings
// are the same buffers as vec4 arrays) over the first 4 * (n / 4), the scalar ones taking the rest.
// The grid may be split over x and y (see Gpu.grid).
// sigmoid and 1 - sigmoid are both formed from exp(-|g|), which never overflows: WGSL lets an
// implementation assume no infinities, so exp(-g) for g = -100 could give anything.

struct Params { n: u32, start: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
// gate on entry, d gate on exit (the in-place backward); likewise up and d up.
@group(0) @binding(5) var<storage, read_write> gate_dgate: array<f32>;
@group(0) @binding(6) var<storage, read_write> up_dup: array<f32>;
@group(0) @binding(7) var<storage, read> gate4: array<vec4f>;
@group(0) @binding(8) var<storage, read> up4: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(10) var<storage, read> dout4: array<vec4f>;
@group(0) @binding(11) var<storage, read_write> gate_dgate4: array<vec4f>;
@group(0) @binding(12) var<storage, read_write> up_dup4: array<vec4f>;

// (sigmoid(g), 1 - sigmoid(g)) without cancellation or overflow for any finite g.
fn sigmoid_pair(g: f32) -> vec2f {
  let e = exp(-abs(g));
  let inv = 1.0 / (1.0 + e);
  if (g >= 0.0) { return vec2f(inv, e * inv); }
  return vec2f(e * inv, inv);
}

// sigmoid_pair of four values: [0] sigmoid, [1] 1 - sigmoid.
fn sigmoid_pair4(g: vec4f) -> array<vec4f, 2> {
  let e = exp(-abs(g));
  let inv = 1.0 / (1.0 + e);
  let positive = g >= vec4f(0.0);
  return array<vec4f, 2>(select(e * inv, inv, positive), select(inv, e * inv, positive));
}

fn element(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = p.start + element(gid, nwg);
  if (i >= p.n) { return; }
  let g = gate[i];
  out[i] = g * sigmoid_pair(g).x * up[i];
}

@compute @workgroup_size(256)
fn swiglu_forward_vec4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.n / 4u) { return; }
  let g = gate4[i];
  out4[i] = g * sigmoid_pair4(g)[0] * up4[i];
}

@compute @workgroup_size(256)
fn swiglu_backward_inplace(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = p.start + element(gid, nwg);
  if (i >= p.n) { return; }
  let g = gate_dgate[i];
  let u = up_dup[i];
  let s = sigmoid_pair(g);
  let d = dout[i];
  gate_dgate[i] = d * u * s.x * (1.0 + g * s.y);
  up_dup[i] = d * g * s.x;
}

@compute @workgroup_size(256)
fn swiglu_backward_inplace_vec4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = element(gid, nwg);
  if (i >= p.n / 4u) { return; }
  let g = gate_dgate4[i];
  let u = up_dup4[i];
  let s = sigmoid_pair4(g);
  let d = dout4[i];
  gate_dgate4[i] = d * u * s[0] * (1.0 + g * s[1]);
  up_dup4[i] = d * g * s[0];
}

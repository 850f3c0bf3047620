// Rotary position embedding, half-split ("rotate_half") layout as Hugging Face Llama applies it.
// Per head of width d = head_dim, for i < d/2, with angle a = pos * invFreq[i]:
// Forward:  x'[i] = x[i] cos a - x[i + d/2] sin a,   x'[i + d/2] = x[i + d/2] cos a + x[i] sin a.
// Backward: the transpose, i.e. the rotation by -a:
//           dx[i] = dy[i] cos a + dy[i + d/2] sin a,  dx[i + d/2] = dy[i + d/2] cos a - dy[i] sin a.
// Shapes: x [M, n_heads * d], rotated in place; invFreq [d/2]. Token m sits at position
//         pos = (m % T) + position_offset.
// invFreq comes from the CPU, rounded to f32 exactly as PyTorch computes it, and the angle is the f32
// product pos * invFreq[i], again as in HF, so the rotation matches HF's own f32 rounding at long
// positions. sin and cos are computed here rather than with the builtins because WGSL only promises
// 2^-11 absolute error for those, and only inside [-pi, pi], while angles reach the position count.
// One invocation per rotated pair (m, head, i); the grid may be split over x and y (see Gpu.grid).

struct Params { M: u32, T: u32, n_heads: u32, head_dim: u32, position_offset: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> inv_freq: array<f32>;

// sin and cos of a >= 0 with an absolute error near 1e-7 for a < 2^16 * pi/2 (about 1e5).
// Cody-Waite reduction by pi/2: P1 and P2 carry 8 significant bits each, so k * P1 and k * P2 are
// exact for k < 2^16, and P3 holds the rest of pi/2. Then Cephes' sinf/cosf polynomials on
// [-pi/4, pi/4] and the quadrant k mod 4 picks the signs.
fn sin_cos(a: f32) -> vec2f {
  const P1 = 1.5703125;
  const P2 = 0.000484466552734375;
  const P3 = -6.397578377557687e-7;
  let k = floor(a * 0.6366197723675814 + 0.5);
  let r = ((a - k * P1) - k * P2) - k * P3;
  let z = r * r;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  switch (u32(k) & 3u) {
    case 0u: { return vec2f(s, c); }
    case 1u: { return vec2f(c, -s); }
    case 2u: { return vec2f(-s, -c); }
    default: { return vec2f(-c, s); }
  }
}

// Rotates pair number `i` by `direction` * angle; invocations past the last pair do nothing.
fn rotate(i: u32, direction: f32) {
  let half_dim = p.head_dim / 2u;
  if (i >= p.M * p.n_heads * half_dim) { return; }
  let row = i / half_dim;
  let j = i - row * half_dim;
  let m = row / p.n_heads;
  let pos = m % p.T + p.position_offset;
  let sc = sin_cos(f32(pos) * inv_freq[j]);
  let sn = direction * sc.x;
  let lo = row * p.head_dim + j;
  let hi = lo + half_dim;
  let a = x[lo];
  let b = x[hi];
  x[lo] = a * sc.y - b * sn;
  x[hi] = b * sc.y + a * sn;
}

@compute @workgroup_size(256)
fn rope_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  rotate(gid.x + gid.y * nwg.x * 256u, 1.0);
}

@compute @workgroup_size(256)
fn rope_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  rotate(gid.x + gid.y * nwg.x * 256u, -1.0);
}

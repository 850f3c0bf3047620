// AdamW step (decoupled weight decay), with PyTorch's non-fused torch.optim.AdamW rounding:
//   g  = grad * clip                           (clip = coefficient from grad_norm_finalize)
//   p  = p * (1 - lr * wd)
//   m  = lerp(m, g, 1 - b1)                    (m = b1 m + (1 - b1) g, evaluated as torch.lerp)
//   v  = v * b2 + (1 - b2) * g * g
//   p  = p - step_size * m / (sqrt(v) / sqrt(1 - b2^t) + eps),   step_size = lr / (1 - b1^t)
// The scalars (1 - lr*wd, step_size, sqrt(1 - b2^t)) come from the CPU in float64, rounded once
// to f32, as PyTorch passes Python floats to its f32 kernels.
// params, grads, m, v: [n], the flat buffers of all trainable tensors (zero padding stays zero:
// a zero p, g, m and v give a zero update). clip: [2], only clip[1] is read. One invocation per
// element; the grid may be split over x and y (see Gpu.grid).

struct Params {
  n: u32,
  decay: f32,
  lerp_weight: f32,
  beta2: f32,
  one_minus_beta2: f32,
  step_size: f32,
  bc2_sqrt: f32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
@group(0) @binding(5) var<storage, read> clip: array<f32>;

@compute @workgroup_size(256)
fn adamw_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let g = grads[i] * clip[1];
  let w = p.lerp_weight;
  let m0 = m[i];
  // torch.lerp switches formula at weight 0.5 to stay accurate near either end.
  let m1 = select(g - (g - m0) * (1.0 - w), m0 + w * (g - m0), abs(w) < 0.5);
  let v1 = v[i] * p.beta2 + p.one_minus_beta2 * g * g;
  let denom = sqrt(v1) / p.bc2_sqrt + p.eps;
  params[i] = params[i] * p.decay - p.step_size * m1 / denom;
  m[i] = m1;
  v[i] = v1;
}

// Dropout on the input of a LoRA adapter (PEFT: y = x W^T + s * dropout(x) A^T B^T); the products
// themselves are matmul.wgsl dispatches composed in src/kernels/lora.ts.
// Forward:  x_drop[i] = keep(i) ? x[i] * scale : 0                 (inverted dropout, scale = 1/(1-p))
// Backward: dst[i] += keep(i) ? src[i] * scale : 0                 (src = du A, dst = dx, which the
//           base path dY W also feeds, hence accumulate)
// keep(i) is a stateless hash of (seed, element index i into the [M, in] tensor), so backward
// recomputes the forward mask instead of storing it: h = pcg(seed ^ pcg(i)) with pcg the PCG-RXS-M-XS
// 32-bit hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020), and the element is kept
// when (h >> 8) >= threshold, threshold = round(p * 2^24), an exact integer test that the CPU mirror
// (loraDropoutKept in src/kernels/lora.ts) reproduces bit for bit.
// One invocation per element; the grid may be split over x and y (see Gpu.grid).

struct Params {
  n: u32,
  seed: u32,
  threshold: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> x_drop: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn kept(i: u32) -> bool {
  return (pcg(p.seed ^ pcg(i)) >> 8u) >= p.threshold;
}

@compute @workgroup_size(256)
fn lora_dropout_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  x_drop[i] = select(0.0, x[i] * p.scale, kept(i));
}

@compute @workgroup_size(256)
fn lora_dropout_backward_accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  if (kept(i)) {
    dst[i] = dst[i] + src[i] * p.scale;
  }
}

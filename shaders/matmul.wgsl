// Matrix products of a linear layer y = x W^T (+ bias), W: [N, K], x: [M, K], y: [M, N].
// Forward:          Y  = alpha * X W^T    + beta * Y  (+ bias)   matmul_forward[_bias]
//   with LoRA:      Y  = ... + s * U B^T  (U [M, r], B [N, r])    matmul_forward[_bias]_lora
// Backward, input:  dX = alpha * dY W     + beta * dX            matmul_backward_input
// Backward, weight: dW = alpha * dY^T X   + beta * dW            matmul_backward_weight
// All three are one product C[i, j] = sum_k A(i, k) B(k, j) over an output of p.rows x p.cols and a
// reduction of length p.depth; they differ only in which index of A and B is contiguous in memory:
//   forward:          A = X [M, K]: a[i*lda + k];   B = W^T: b[j*ldb + k]   (P=M, Q=N, R=K)
//   backward_input:   A = dY [M, N]: a[i*lda + k];  B = W:   b[k*ldb + j]   (P=M, Q=K, R=N)
//   backward_weight:  A = dY^T: a[k*lda + i];       B = X:   b[k*ldb + j]   (P=N, Q=K, R=M)
// One workgroup of 16x16 invocations owns a 64x64 output tile and walks the reduction in slices of
// 16, staging A and B slices in workgroup memory (read once from global memory, used 64 times);
// each invocation keeps a 4x4 register tile of rows ty + 16i and columns tx + 16j, so neighbouring
// invocations touch neighbouring columns (conflict-free workgroup reads, coalesced stores).
// Each slice is loaded so that consecutive invocations read consecutive addresses of whichever index
// is contiguous; the workgroup arrays have a padded row (65) so that the transposing stores of the
// k-contiguous layouts do not all land in one memory bank.
// The `*_direct` entry points compute the same 4x4 register blocks straight from storage with no
// workgroup memory and no barriers (one invocation per block, 64 per workgroup). The wrapper picks
// them on CPU adapters (SwiftShader), where a barrier is a fiber switch and "shared" memory is the
// same cache as storage, so tiling only costs.
// The tile grid is flattened (tile = wid.x + wid.y * nwg.x, see Gpu.grid), so M is not bounded by the
// per-dimension workgroup limit. Offsets (off_*) are in elements: the wrapper rounds binding offsets
// down to the device's alignment and passes the rest here, so any 4-byte-aligned sub-range works.
// beta == 0 never reads the old output, which may hold garbage (NaN) on the first write.
// Weight formats: src/kernels/weight-shader.ts preprocesses this source into one module per format
// of B where B is a frozen weight W (forward, backward_input). F32 reads b as f32. BF16 and F16 read
// b as u32 words of two 16-bit values (src/model/weight-format.ts: element e in word e / 2) and
// widen each in b_at, so products and sums stay f32; off_b and ldb count elements either way. BLOCK
// (the GGUF block formats) reads b as u32 words of whole blocks and decodes element e in b_at with
// weight_value (shaders/weight-blocks.wgsl); the wrapper starts the binding at a block. The
// backward_weight entries (B = X, an activation) exist only in the F32 module.
// Grouped forward (q/k/v from one input): up to three products X W_g^T that share X, one dispatch over
// the columns of all of them. Output columns [0, col1) are group 0 (off_b, off_c, ldc, off_bias),
// [col1, col2) group 1 (off_b1, ...), [col2, cols) group 2; col1 or col2 = 0: no such group. Column j of
// group g reads W's row j - start_g at off_b_g and writes c[off_c_g + row * ldc_g + j - start_g], so the
// groups' weights, outputs and biases are any ranges of one binding each (shaders/matmul-groups.wgsl).
// A tile may straddle two groups. The backward entries are never grouped (col1 = col2 = 0).
// LoRA epilogue (the *_lora entries): a layer with an adapter adds s * (u B_lora^T) to its base product,
// u = drop(x) A^T [M, r] computed before (src/kernels/lora.ts), B_lora [N, r]; both f32 whatever the
// weight format. Each invocation adds, to each output (m, n) it stores,
//   l(m, n) = s * sum_{j < r} u[m, j] B_lora[n, j]      (p.lora_r, p.lora_scale; off_u, off_lb in elements)
// summed from j = 0 in f32, then scaled, for r more multiply-adds per output and y written once instead of
// rewritten by a second product. Evaluation order per output, as the two-pass path rounds it (base
// product stored, then a product with alpha = s, beta = 1 adding into it):
//   v = alpha * acc + bias;  v += beta * y_old;  v += l
// (mathematically alpha x W^T + beta y + bias + s u B_lora^T): both sum j = 0, 1, ... in f32 and add l
// last, so they round alike. u and B_lora are read straight from storage: an r-deep block per invocation.

struct Params {
  rows: u32,
  cols: u32,
  depth: u32,
  tiles_x: u32,
  tiles_y: u32,
  lda: u32,
  ldb: u32,
  ldc: u32,
  off_a: u32,
  off_b: u32,
  off_c: u32,
  off_bias: u32,
  alpha: f32,
  beta: f32,
  col1: u32,
  col2: u32,
  off_b1: u32,
  off_b2: u32,
  off_c1: u32,
  off_c2: u32,
  ldc1: u32,
  ldc2: u32,
  off_bias1: u32,
  off_bias2: u32,
  lora_r: u32,
  lora_scale: f32,
  off_u: u32,
  off_lb: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
#if ${F32}
@group(0) @binding(2) var<storage, read> b: array<f32>;
fn b_at(e: u32) -> f32 { return b[e]; }
#elif ${BLOCK}
@group(0) @binding(2) var<storage, read> b: array<u32>;
fn weight_word(i: u32) -> u32 { return b[i]; }
fn b_at(e: u32) -> f32 { return weight_value(e); }
#else
@group(0) @binding(2) var<storage, read> b: array<u32>;
fn b_at(e: u32) -> f32 { return widen_weight(b[e >> 1u], e); }
#endif
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> lora_u: array<f32>;
@group(0) @binding(6) var<storage, read> lora_b: array<f32>;

const TILE = 64u;
const SLICE = 16u;
const SIDE = 16u;
const THREADS = 256u;
const PADDED = 65u;

const FORWARD = 0u;
const BACKWARD_INPUT = 1u;
const BACKWARD_WEIGHT = 2u;

var<workgroup> tile_a: array<f32, SLICE * PADDED>;
var<workgroup> tile_b: array<f32, SLICE * PADDED>;

fn load_slices(kind: u32, row0: u32, col0: u32, k0: u32, t: u32) {
  for (var l = 0u; l < TILE * SLICE / THREADS; l++) {
    let e = t + l * THREADS;

    var ia = e / SLICE;
    var ka = e % SLICE;
    if (kind == BACKWARD_WEIGHT) {
      ia = e % TILE;
      ka = e / TILE;
    }
    let i = row0 + ia;
    let ki = k0 + ka;
    var va = 0.0;
    if (i < p.rows && ki < p.depth) {
      if (kind == BACKWARD_WEIGHT) {
        va = a[p.off_a + ki * p.lda + i];
      } else {
        va = a[p.off_a + i * p.lda + ki];
      }
    }
    tile_a[ka * PADDED + ia] = va;

    var jb = e % TILE;
    var kb = e / TILE;
    if (kind == FORWARD) {
      jb = e / SLICE;
      kb = e % SLICE;
    }
    let j = col0 + jb;
    let kj = k0 + kb;
    var vb = 0.0;
    if (j < p.cols && kj < p.depth) {
      if (kind == FORWARD) {
        vb = b_at(w_row(j) + kj);
      } else {
        vb = b_at(p.off_b + kj * p.ldb + j);
      }
    }
    tile_b[kb * PADDED + jb] = vb;
  }
}

/** Origin (row0, col0) of this workgroup's output tile, or rows = u32 max past the last tile. */
fn tile_origin(wid: vec3u, nwg: vec3u) -> vec2u {
  let tile = wid.x + wid.y * nwg.x;
  if (tile >= p.tiles_x * p.tiles_y) {
    return vec2u(0xffffffffu, 0u);
  }
  return vec2u((tile / p.tiles_x) * TILE, (tile % p.tiles_x) * TILE);
}

fn product(kind: u32, origin: vec2u, lid: vec3u) -> array<vec4f, 4> {
  let t = lid.x + lid.y * SIDE;
  var acc: array<vec4f, 4>;
  for (var k0 = 0u; k0 < p.depth; k0 += SLICE) {
    load_slices(kind, origin.x, origin.y, k0, t);
    workgroupBarrier();
    for (var k = 0u; k < SLICE; k++) {
      var av: vec4f;
      var bv: vec4f;
      for (var i = 0u; i < 4u; i++) {
        av[i] = tile_a[k * PADDED + lid.y + i * SIDE];
        bv[i] = tile_b[k * PADDED + lid.x + i * SIDE];
      }
      for (var i = 0u; i < 4u; i++) {
        acc[i] += av[i] * bv;
      }
    }
    workgroupBarrier();
  }
  return acc;
}

fn store(acc: array<vec4f, 4>, origin: vec2u, lid: vec3u, add: vec4f, lora: array<vec4f, 4>) {
  for (var i = 0u; i < 4u; i++) {
    let row = origin.x + lid.y + i * SIDE;
    if (row >= p.rows) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let col = origin.y + lid.x + j * SIDE;
      if (col >= p.cols) { continue; }
      let idx = out_index(row, col);
      var v = p.alpha * acc[i][j] + add[j];
      if (p.beta != 0.0) {
        v += p.beta * c[idx];
      }
      c[idx] = v + lora[i][j];
    }
  }
}

/**
 * The LoRA epilogue of one register block: s * sum_{j < r} u[rows[i], j] B_lora[cols[q], j], summed
 * like a product of depth r (0 outside the output).
 */
fn lora_block(rows: vec4u, cols: vec4u) -> array<vec4f, 4> {
  var acc: array<vec4f, 4>;
  for (var j = 0u; j < p.lora_r; j++) {
    var bv = vec4f(0.0);
    for (var q = 0u; q < 4u; q++) {
      if (cols[q] < p.cols) { bv[q] = lora_b[p.off_lb + cols[q] * p.lora_r + j]; }
    }
    for (var i = 0u; i < 4u; i++) {
      if (rows[i] < p.rows) { acc[i] += lora_u[p.off_u + rows[i] * p.lora_r + j] * bv; }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    acc[i] *= p.lora_scale;
  }
  return acc;
}

const STRIDES = vec4u(0u, SIDE, 2u * SIDE, 3u * SIDE);

fn bias_tiled(origin: vec2u, lid: vec3u) -> vec4f {
  var add = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    let col = origin.y + lid.x + j * SIDE;
    if (col < p.cols) { add[j] = bias_at(col); }
  }
  return add;
}

fn lora_tiled(origin: vec2u, lid: vec3u) -> array<vec4f, 4> {
  return lora_block(origin.x + lid.y + STRIDES, origin.y + lid.x + STRIDES);
}

@compute @workgroup_size(16, 16)
fn matmul_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  let origin = tile_origin(wid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store(product(FORWARD, origin, lid), origin, lid, vec4f(0.0), array<vec4f, 4>());
}

@compute @workgroup_size(16, 16)
fn matmul_forward_bias(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_id) lid: vec3u) {
  let origin = tile_origin(wid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store(product(FORWARD, origin, lid), origin, lid, bias_tiled(origin, lid), array<vec4f, 4>());
}

@compute @workgroup_size(16, 16)
fn matmul_forward_lora(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_id) lid: vec3u) {
  let origin = tile_origin(wid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store(product(FORWARD, origin, lid), origin, lid, vec4f(0.0), lora_tiled(origin, lid));
}

@compute @workgroup_size(16, 16)
fn matmul_forward_bias_lora(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                            @builtin(local_invocation_id) lid: vec3u) {
  let origin = tile_origin(wid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store(product(FORWARD, origin, lid), origin, lid, bias_tiled(origin, lid), lora_tiled(origin, lid));
}

@compute @workgroup_size(16, 16)
fn matmul_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_id) lid: vec3u) {
  let origin = tile_origin(wid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store(product(BACKWARD_INPUT, origin, lid), origin, lid, vec4f(0.0), array<vec4f, 4>());
}

#if ${F32}
@compute @workgroup_size(16, 16)
fn matmul_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                          @builtin(local_invocation_id) lid: vec3u) {
  let origin = tile_origin(wid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store(product(BACKWARD_WEIGHT, origin, lid), origin, lid, vec4f(0.0), array<vec4f, 4>());
}
#endif

fn load_a(kind: u32, i: u32, k: u32) -> f32 {
  if (i >= p.rows) { return 0.0; }
  if (kind == BACKWARD_WEIGHT) { return a[p.off_a + k * p.lda + i]; }
  return a[p.off_a + i * p.lda + k];
}

/** `row`: forward only, w_row(j), found once per block rather than per k. */
fn load_b(kind: u32, k: u32, j: u32, row: u32) -> f32 {
  if (j >= p.cols) { return 0.0; }
  if (kind == FORWARD) { return b_at(row + k); }
  return b_at(p.off_b + k * p.ldb + j);
}

/** Block origin of this invocation (tiles_x/tiles_y count 4x4 blocks here), or u32 max past the end. */
fn block_origin(gid: vec3u, nwg: vec3u) -> vec2u {
  let block = gid.x + gid.y * nwg.x * 64u;
  if (block >= p.tiles_x * p.tiles_y) {
    return vec2u(0xffffffffu, 0u);
  }
  return vec2u((block / p.tiles_x) * 4u, (block % p.tiles_x) * 4u);
}

fn product_direct(kind: u32, origin: vec2u) -> array<vec4f, 4> {
  var acc: array<vec4f, 4>;
  var rows = vec4u(0u);
  if (kind == FORWARD) {
    for (var j = 0u; j < 4u; j++) { rows[j] = w_row(origin.y + j); }
  }
  for (var k = 0u; k < p.depth; k++) {
    let bv = vec4f(load_b(kind, k, origin.y, rows.x), load_b(kind, k, origin.y + 1u, rows.y),
                   load_b(kind, k, origin.y + 2u, rows.z), load_b(kind, k, origin.y + 3u, rows.w));
    for (var i = 0u; i < 4u; i++) {
      acc[i] += load_a(kind, origin.x + i, k) * bv;
    }
  }
  return acc;
}

fn store_direct(acc: array<vec4f, 4>, origin: vec2u, add: vec4f, lora: array<vec4f, 4>) {
  for (var i = 0u; i < 4u; i++) {
    let row = origin.x + i;
    if (row >= p.rows) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let col = origin.y + j;
      if (col >= p.cols) { continue; }
      let idx = out_index(row, col);
      var v = p.alpha * acc[i][j] + add[j];
      if (p.beta != 0.0) {
        v += p.beta * c[idx];
      }
      c[idx] = v + lora[i][j];
    }
  }
}

fn bias_direct(origin: vec2u) -> vec4f {
  var add = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    let col = origin.y + j;
    if (col < p.cols) { add[j] = bias_at(col); }
  }
  return add;
}

fn lora_direct(origin: vec2u) -> array<vec4f, 4> {
  let steps = vec4u(0u, 1u, 2u, 3u);
  return lora_block(origin.x + steps, origin.y + steps);
}

@compute @workgroup_size(64)
fn matmul_forward_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let origin = block_origin(gid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store_direct(product_direct(FORWARD, origin), origin, vec4f(0.0), array<vec4f, 4>());
}

@compute @workgroup_size(64)
fn matmul_forward_bias_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let origin = block_origin(gid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store_direct(product_direct(FORWARD, origin), origin, bias_direct(origin), array<vec4f, 4>());
}

@compute @workgroup_size(64)
fn matmul_forward_lora_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let origin = block_origin(gid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store_direct(product_direct(FORWARD, origin), origin, vec4f(0.0), lora_direct(origin));
}

@compute @workgroup_size(64)
fn matmul_forward_bias_lora_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let origin = block_origin(gid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store_direct(product_direct(FORWARD, origin), origin, bias_direct(origin), lora_direct(origin));
}

@compute @workgroup_size(64)
fn matmul_backward_input_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let origin = block_origin(gid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store_direct(product_direct(BACKWARD_INPUT, origin), origin, vec4f(0.0), array<vec4f, 4>());
}

#if ${F32}
@compute @workgroup_size(64)
fn matmul_backward_weight_direct(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let origin = block_origin(gid, nwg);
  if (origin.x == 0xffffffffu) { return; }
  store_direct(product_direct(BACKWARD_WEIGHT, origin), origin, vec4f(0.0), array<vec4f, 4>());
}
#endif

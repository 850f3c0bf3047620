// Matrix products of a linear layer y = x W^T (+ bias), W: [N, K], x: [M, K], y: [M, N], shaped for GPUs:
// vector loads, 8x4 register blocks, double-buffered reduction slices, and split-K for long thin products.
// Forward:          Y  = alpha * X W^T    + beta * Y  (+ bias)   matmul_vec4_forward[_bias]
//   with LoRA:      Y  = ... + s * U B^T  (U [M, r], B [N, r])    matmul_vec4_forward[_bias]_lora
// Backward, input:  dX = alpha * dY W     + beta * dX            matmul_vec4_backward_input
// Backward, weight: dW = alpha * dY^T X   + beta * dW            matmul_vec4_backward_weight
// As in shaders/matmul.wgsl, all three are C[i, j] = sum_k A(i, k) B(k, j) over p.rows x p.cols outputs
// and a reduction of length p.depth, differing only in which index is contiguous in memory:
//   forward:          A = X [M, K]: a[i*lda + k];   B = W^T: b[j*ldb + k]   (P=M, Q=N, R=K)
//   backward_input:   A = dY [M, N]: a[i*lda + k];  B = W:   b[k*ldb + j]   (P=M, Q=K, R=N)
//   backward_weight:  A = dY^T: a[k*lda + i];       B = X:   b[k*ldb + j]   (P=N, Q=K, R=M)
// One workgroup of 128 invocations owns a 64x64 output tile; invocation t = 16 ty + tx keeps the 8x4
// register block of rows 8 ty .. 8 ty + 7 and columns 4 tx .. 4 tx + 3. The reduction walks slices of
// 16; each slice of A and B is staged in workgroup memory as vec4s along the output index
// (tile[k][i / 4]), so the inner loop reads two vec4s of A (broadcast: one address per 16 invocations)
// and one vec4 of B (consecutive addresses across tx) for 32 multiply-adds, against 8 scalar reads per
// 16 in matmul.wgsl's tiles. Global memory is read as vec4s too (a and f32 b are bound as array<vec4f>):
// four consecutive elements of whichever index is contiguous, one vector load when they start on a
// 16-byte boundary and lie inside the matrix, element by element otherwise (so any offset and leading
// dimension work; multiples of 4 take the fast path). Two workgroup buffers alternate: the next slice is
// fetched into registers before the current one is multiplied and stored into the other buffer after,
// so global latency overlaps arithmetic and one barrier per slice suffices (2 x 2 x 16 x 64 x 4 bytes =
// 16 KiB, the WebGPU default limit).
// Split-K (matmul_vec4_backward_weight_split + matmul_vec4_split_sum): when the output has few tiles
// and the reduction is long (the LoRA gradients dA [r, in] and dB [out, r] reduce over every token),
// one tile's workgroups would leave most of a GPU idle. Workgroup (tile, s) then reduces depth
// [s * chunk, (s + 1) * chunk) into partial[s, P, Q] (alpha, beta not applied), and one invocation per
// output sums its p.splits partials in order s = 0, 1, ... and applies alpha and beta: deterministic,
// no atomics. partial is the wrapper's scratch (src/kernels/matmul-vec4.ts).
// Sums stay f32 in reduction order, as in matmul.wgsl; results differ from its schedules only by
// rounding. beta == 0 never reads the old output (it may hold NaN). Tiles are flattened
// (tile = wid.x + wid.y * nwg.x, see Gpu.grid). Offsets (off_*) are in elements within the bound ranges.
// Weight formats: preprocessed per format of B = W by src/kernels/weight-shader.ts (forward and
// backward_input). F32 binds b as vec4s; BF16 and F16 bind u32 words of two 16-bit values
// (src/model/weight-format.ts) and widen them with widen_weight, so products stay f32. The
// backward_weight entries (B = X, an activation) exist only in the F32 module.
// Grouped forward: as in shaders/matmul.wgsl (col1, col2 and the per-group offsets, mapped by
// shaders/matmul-groups.wgsl), up to three products that share X in one dispatch. Never grouped: the backward entries.
// LoRA epilogue (the *_lora entries), as in shaders/matmul.wgsl: each invocation adds to each output
// (m, n) of its 8x4 block l(m, n) = s * sum_{j < r} u[m, j] B_lora[n, j] (u = drop(x) A^T [M, r],
// B_lora [N, r], both f32 and read as scalars, any offset), summed from j = 0 and then scaled; per
// output v = alpha * acc + bias; v += beta * y_old; v += l, the order in which the two-pass path (base
// product, then one with alpha = s and beta = 1 into it) rounds. y is written once.

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
  chunk: u32,
  splits: u32,
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
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
#if ${F32}
@group(0) @binding(2) var<storage, read> b: array<vec4f>;

fn b_quad(e: u32, n: u32) -> vec4f {
  if (n == 4u && (e & 3u) == 0u) { return b[e >> 2u]; }
  var v = vec4f(0.0);
  for (var q = 0u; q < 4u; q++) {
    if (q < n) { v[q] = b[(e + q) >> 2u][(e + q) & 3u]; }
  }
  return v;
}
#else
@group(0) @binding(2) var<storage, read> b: array<u32>;

fn b_quad(e: u32, n: u32) -> vec4f {
  if (n == 4u && (e & 1u) == 0u) {
    let lo = b[e >> 1u];
    let hi = b[(e >> 1u) + 1u];
    return vec4f(widen_weight(lo, 0u), widen_weight(lo, 1u), widen_weight(hi, 0u), widen_weight(hi, 1u));
  }
  var v = vec4f(0.0);
  for (var q = 0u; q < 4u; q++) {
    if (q < n) { v[q] = widen_weight(b[(e + q) >> 1u], e + q); }
  }
  return v;
}
#endif
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;
@group(0) @binding(6) var<storage, read> lora_u: array<f32>;
@group(0) @binding(7) var<storage, read> lora_b: array<f32>;

const TILE = 64u;
const SLICE = 16u;
const THREADS = 128u;
const QUADS = 16u;
const STAGE = SLICE * QUADS;

const FORWARD = 0u;
const BACKWARD_INPUT = 1u;
const BACKWARD_WEIGHT = 2u;

var<workgroup> tile_a: array<vec4f, 2u * STAGE>;
var<workgroup> tile_b: array<vec4f, 2u * STAGE>;

/** Elements e .. e + n - 1 of a (n <= 4; the rest 0): one vector load when aligned and whole. */
fn a_quad(e: u32, n: u32) -> vec4f {
  if (n == 4u && (e & 3u) == 0u) { return a[e >> 2u]; }
  var v = vec4f(0.0);
  for (var q = 0u; q < 4u; q++) {
    if (q < n) { v[q] = a[(e + q) >> 2u][(e + q) & 3u]; }
  }
  return v;
}

/** How many of x .. x + 3 lie below limit. */
fn avail(x: u32, limit: u32) -> u32 {
  return select(0u, min(4u, limit - x), x < limit);
}

// Each slice holds 16 x 64 values of an operand = 256 vec4s, two per invocation. Where the output index
// is contiguous, vec4 l of invocation t is (k = e / 16, i = 4 (e % 16)) with e = t + 128 l, stored as it
// is; where k is contiguous, it is (i = e / 4, k = 4 (e % 4)), consecutive invocations reading
// consecutive addresses of a row, and its four values go to four rows of the slice.

fn fetch(is_a: bool, kind: u32, origin: u32, k0: u32, k_end: u32, t: u32) -> array<vec4f, 2> {
  var k_major = kind == BACKWARD_WEIGHT;
  var limit = p.rows;
  var base = p.off_a;
  var ld = p.lda;
  if (!is_a) {
    k_major = kind != FORWARD;
    limit = p.cols;
    base = p.off_b;
    ld = p.ldb;
  }
  var v: array<vec4f, 2>;
  for (var l = 0u; l < 2u; l++) {
    let e = t + l * THREADS;
    var idx: u32;
    var n: u32;
    if (k_major) {
      let k = k0 + e / QUADS;
      let i = origin + 4u * (e % QUADS);
      idx = base + k * ld + i;
      n = select(0u, avail(i, limit), k < k_end);
    } else {
      let i = origin + e / 4u;
      let k = k0 + 4u * (e % 4u);
      // B is k-contiguous in the forward only, where its rows may lie in several groups.
      idx = select(base + i * ld, w_row(i), !is_a) + k;
      n = select(0u, avail(k, k_end), i < limit);
    }
    if (is_a) {
      v[l] = a_quad(idx, n);
    } else {
      v[l] = b_quad(idx, n);
    }
  }
  return v;
}

fn stash(is_a: bool, kind: u32, v: array<vec4f, 2>, stage: u32, t: u32) {
  var k_major = kind == BACKWARD_WEIGHT;
  if (!is_a) { k_major = kind != FORWARD; }
  for (var l = 0u; l < 2u; l++) {
    let e = t + l * THREADS;
    if (k_major) {
      let at = stage * STAGE + e;
      if (is_a) { tile_a[at] = v[l]; } else { tile_b[at] = v[l]; }
    } else {
      let i = e / 4u;
      let k = 4u * (e % 4u);
      for (var q = 0u; q < 4u; q++) {
        let at = stage * STAGE + (k + q) * QUADS + i / 4u;
        if (is_a) { tile_a[at][i % 4u] = v[l][q]; } else { tile_b[at][i % 4u] = v[l][q]; }
      }
    }
  }
}

/** The 8x4 block of invocation t over the reduction range [k_begin, k_end) (workgroup-uniform). */
fn product(kind: u32, origin: vec2u, t: u32, k_begin: u32, k_end: u32) -> array<vec4f, 8> {
  var acc: array<vec4f, 8>;
  if (k_begin >= k_end) { return acc; }
  let tx = t % 16u;
  let ty = t / 16u;
  var ra = fetch(true, kind, origin.x, k_begin, k_end, t);
  var rb = fetch(false, kind, origin.y, k_begin, k_end, t);
  stash(true, kind, ra, 0u, t);
  stash(false, kind, rb, 0u, t);
  workgroupBarrier();
  var stage = 0u;
  for (var k0 = k_begin; k0 < k_end; k0 += SLICE) {
    let more = k0 + SLICE < k_end;
    if (more) {
      ra = fetch(true, kind, origin.x, k0 + SLICE, k_end, t);
      rb = fetch(false, kind, origin.y, k0 + SLICE, k_end, t);
    }
    let at = stage * STAGE;
    for (var k = 0u; k < SLICE; k++) {
      let a0 = tile_a[at + k * QUADS + 2u * ty];
      let a1 = tile_a[at + k * QUADS + 2u * ty + 1u];
      let bv = tile_b[at + k * QUADS + tx];
      for (var r = 0u; r < 4u; r++) {
        acc[r] += a0[r] * bv;
        acc[r + 4u] += a1[r] * bv;
      }
    }
    if (more) {
      stash(true, kind, ra, 1u - stage, t);
      stash(false, kind, rb, 1u - stage, t);
    }
    workgroupBarrier();
    stage = 1u - stage;
  }
  return acc;
}

/** Tile index of this workgroup, or u32 max past the last of `count`. */
fn tile_index(wid: vec3u, nwg: vec3u, count: u32) -> u32 {
  let tile = wid.x + wid.y * nwg.x;
  return select(0xffffffffu, tile, tile < count);
}

fn tile_origin(tile: u32) -> vec2u {
  return vec2u((tile / p.tiles_x) * TILE, (tile % p.tiles_x) * TILE);
}

fn store(acc: array<vec4f, 8>, origin: vec2u, t: u32, add: vec4f, lora: array<vec4f, 8>) {
  let col0 = origin.y + 4u * (t % 16u);
  for (var r = 0u; r < 8u; r++) {
    let row = origin.x + 8u * (t / 16u) + r;
    if (row >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + j;
      if (col >= p.cols) { break; }
      let idx = out_index(row, col);
      var v = p.alpha * acc[r][j] + add[j];
      if (p.beta != 0.0) {
        v += p.beta * c[idx];
      }
      c[idx] = v + lora[r][j];
    }
  }
}

/** The LoRA epilogue of invocation t's 8x4 block: s * sum_{j < r} u[row, j] B_lora[col, j] (0 outside the output). */
fn lora_block(origin: vec2u, t: u32) -> array<vec4f, 8> {
  let row0 = origin.x + 8u * (t / 16u);
  let col0 = origin.y + 4u * (t % 16u);
  var acc: array<vec4f, 8>;
  for (var j = 0u; j < p.lora_r; j++) {
    var bv = vec4f(0.0);
    for (var q = 0u; q < 4u; q++) {
      if (col0 + q < p.cols) { bv[q] = lora_b[p.off_lb + (col0 + q) * p.lora_r + j]; }
    }
    for (var r = 0u; r < 8u; r++) {
      if (row0 + r < p.rows) { acc[r] += lora_u[p.off_u + (row0 + r) * p.lora_r + j] * bv; }
    }
  }
  for (var r = 0u; r < 8u; r++) {
    acc[r] *= p.lora_scale;
  }
  return acc;
}

fn bias_quad(origin: vec2u, t: u32) -> vec4f {
  var add = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    let col = origin.y + 4u * (t % 16u) + j;
    if (col < p.cols) { add[j] = bias_at(col); }
  }
  return add;
}

@compute @workgroup_size(128)
fn matmul_vec4_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_index) t: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let origin = tile_origin(tile);
  store(product(FORWARD, origin, t, 0u, p.depth), origin, t, vec4f(0.0), array<vec4f, 8>());
}

@compute @workgroup_size(128)
fn matmul_vec4_forward_bias(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                            @builtin(local_invocation_index) t: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let origin = tile_origin(tile);
  store(product(FORWARD, origin, t, 0u, p.depth), origin, t, bias_quad(origin, t), array<vec4f, 8>());
}

@compute @workgroup_size(128)
fn matmul_vec4_forward_lora(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                            @builtin(local_invocation_index) t: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let origin = tile_origin(tile);
  store(product(FORWARD, origin, t, 0u, p.depth), origin, t, vec4f(0.0), lora_block(origin, t));
}

@compute @workgroup_size(128)
fn matmul_vec4_forward_bias_lora(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                                 @builtin(local_invocation_index) t: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let origin = tile_origin(tile);
  store(product(FORWARD, origin, t, 0u, p.depth), origin, t, bias_quad(origin, t), lora_block(origin, t));
}

@compute @workgroup_size(128)
fn matmul_vec4_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                              @builtin(local_invocation_index) t: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let origin = tile_origin(tile);
  store(product(BACKWARD_INPUT, origin, t, 0u, p.depth), origin, t, vec4f(0.0), array<vec4f, 8>());
}

#if ${F32}
@compute @workgroup_size(128)
fn matmul_vec4_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                               @builtin(local_invocation_index) t: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let origin = tile_origin(tile);
  store(product(BACKWARD_WEIGHT, origin, t, 0u, p.depth), origin, t, vec4f(0.0), array<vec4f, 8>());
}

@compute @workgroup_size(128)
fn matmul_vec4_backward_weight_split(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                                     @builtin(local_invocation_index) t: u32) {
  let tiles = p.tiles_x * p.tiles_y;
  let tile = tile_index(wid, nwg, tiles * p.splits);
  if (tile == 0xffffffffu) { return; }
  let s = tile / tiles;
  let origin = tile_origin(tile % tiles);
  let k_begin = s * p.chunk;
  let acc = product(BACKWARD_WEIGHT, origin, t, k_begin, min(k_begin + p.chunk, p.depth));
  let col0 = origin.y + 4u * (t % 16u);
  for (var r = 0u; r < 8u; r++) {
    let row = origin.x + 8u * (t / 16u) + r;
    if (row >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + j;
      if (col >= p.cols) { break; }
      partial[(s * p.rows + row) * p.cols + col] = acc[r][j];
    }
  }
}

@compute @workgroup_size(256)
fn matmul_vec4_split_sum(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 256u;
  let n = p.rows * p.cols;
  if (e >= n) { return; }
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    sum += partial[s * n + e];
  }
  let idx = p.off_c + (e / p.cols) * p.ldc + e % p.cols;
  var v = p.alpha * sum;
  if (p.beta != 0.0) {
    v += p.beta * c[idx];
  }
  c[idx] = v;
}
#endif

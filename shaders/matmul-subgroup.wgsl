// Matrix products of a linear layer y = x W^T (+ bias), W: [N, K], x: [M, K], y: [M, N], on devices with
// the `subgroups` feature: operand A reaches the lanes that need it through subgroupShuffle, not through
// workgroup memory, so the reduction has no barrier and no staged tile.
// Forward:          Y  = alpha * X W^T    + beta * Y  (+ bias)   matmul_subgroup_forward[_bias]
// Backward, input:  dX = alpha * dY W     + beta * dX            matmul_subgroup_backward_input
// Backward, weight: dW = alpha * dY^T X   + beta * dW            matmul_subgroup_backward_weight
// As in shaders/matmul.wgsl, all three are C[i, j] = sum_k A(i, k) B(k, j) over p.rows x p.cols outputs
// and a reduction of length p.depth, differing only in which index is contiguous in memory:
//   forward:          A = X [M, K]: a[i*lda + k];   B = W^T: b[j*ldb + k]   (P=M, Q=N, R=K)
//   backward_input:   A = dY [M, N]: a[i*lda + k];  B = W:   b[k*ldb + j]   (P=M, Q=K, R=N)
//   backward_weight:  A = dY^T: a[k*lda + i];       B = X:   b[k*ldb + j]   (P=N, Q=K, R=M)
// Layout. One workgroup of 128 invocations owns a 64x64 output tile, as in matmul-vec4.wgsl, and every
// invocation keeps an 8x4 register block (rows row .. row + 7, columns col .. col + 3). The tile is cut
// into 128 / S subgroup tiles, S = subgroup_size (any power of two from 4 to 128, read at run time): a
// subgroup's lanes form gr x gc groups, gc = min(S, 16, p.lane_cols) but at least S / 8 column groups,
// gr = S / gc row groups, lane l = gc * rg + cg owning rows 8 rg .. 8 rg + 7 and columns 4 cg .. 4 cg + 3
// of a subgroup tile of 8 gr rows by 4 gc columns. So every S fills the 64x64 tile exactly (S = 4: 8x16
// subgroup tiles, 32 of them; S = 32 with the default p.lane_cols = 16: 16x64, 4 of them; S = 128:
// 64x64). Which subgroup tile a subgroup takes is its rank among the workgroup's subgroups: every
// invocation marks in `leaders` whether it is lane 0 of its subgroup, and after the kernel's one barrier
// a subgroup counts the marks below its lane 0's local index (strided over its lanes, one subgroupAdd).
// So nothing assumes how the implementation groups invocations into subgroups, only that each is full
// (128 is a multiple of every allowed size); the slot picks addresses, never the arithmetic, so the
// results do not depend on it. (A workgroup atomicAdd would need no barrier, but SwiftShader returned
// per-subgroup counts from one.) p.lane_cols (a power of two) sets the subgroup tile's aspect; tests use
// it to run the several-row-group layouts on a small subgroup.
// One step of the reduction covers gc values of k: lane (rg, cg) loads the 8 values A(row .. row + 7,
// k0 + cg) of its rows (coalesced across cg where k is contiguous, 8 consecutive ones where i is), then for
// each k = k0 + u, u < gc, every lane shuffles the 8 values from lane gc * rg + u of its row group (two
// vec4 shuffles) and multiplies them by its own B(k, col .. col + 3): 32 multiply-adds per 8 shuffled
// values, each A value loaded once per subgroup and shared with the gc lanes of its row group in
// registers. B is read from storage as vec4s along whichever index is contiguous (four rows of W at once
// for the forward, then transposed in registers), one vector load where 4 elements start on a 16-byte
// boundary and lie inside the matrix, element by element otherwise; its reuse across row groups and
// subgroups is left to the cache. Why: no barrier in the reduction, no staged operand tiles (512 bytes of
// workgroup memory for the ranks), and the operand exchange stays inside a subgroup, against
// matmul-vec4.wgsl's 16 KiB of staged slices and one barrier per slice; which is faster
// is a GPU measurement (README, Matmul schedules), so the wrapper takes this schedule only when asked.
// Sums are f32 in k order 0, 1, ..., as in the other schedules; results differ from them only by
// rounding. beta == 0 never reads the old output (it may hold NaN). Tiles are flattened
// (tile = wid.x + wid.y * nwg.x, see Gpu.grid). Offsets (off_*) are in elements within the bound ranges.
// Weight formats: preprocessed per format of B = W by src/kernels/weight-shader.ts (forward and
// backward_input). F32 binds b as vec4s; BF16 and F16 bind u32 words of two 16-bit values
// (src/model/weight-format.ts) and widen them with widen_weight, so products stay f32. The
// backward_weight entry (B = X, an activation) exists only in the F32 module.
enable subgroups;

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
  lane_cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
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

const TILE = 64u;

const FORWARD = 0u;
const BACKWARD_INPUT = 1u;
const BACKWARD_WEIGHT = 2u;

// 1 where an invocation is lane 0 of its subgroup: a subgroup's slot is how many such lanes precede its own.
var<workgroup> leaders: array<u32, 128>;

/**
 * One lane's place: the first row and column of its 8x4 block, its row group's first lane, its column
 * group. Non-uniform (it depends on the claim), so the reduction's loop bounds come from lane_columns.
 */
struct Lane {
  row: u32,
  col: u32,
  group_lane0: u32,
  cg: u32,
}

/** gc, the column groups of a subgroup tile: uniform, from p and the subgroup size alone. */
fn lane_columns(size: u32) -> u32 {
  return clamp(p.lane_cols, max(size / 8u, 1u), min(size, 16u));
}

fn lane_place(origin: vec2u, lid: u32, size: u32, lane: u32, gc: u32) -> Lane {
  let gr = size / gc;
  leaders[lid] = select(0u, 1u, lane == 0u);
  workgroupBarrier();
  let first = subgroupBroadcast(lid, 0u);
  var below = 0u;
  for (var i = lane; i < first; i += size) { below += leaders[i]; }
  let slot = subgroupAdd(below);
  let col_tiles = 16u / gc;
  let rg = lane / gc;
  let cg = lane % gc;
  var l: Lane;
  l.row = origin.x + (slot / col_tiles) * 8u * gr + 8u * rg;
  l.col = origin.y + (slot % col_tiles) * 4u * gc + 4u * cg;
  l.group_lane0 = rg * gc;
  l.cg = cg;
  return l;
}

/** How many of x .. x + 3 lie below limit. */
fn avail(x: u32, limit: u32) -> u32 {
  return select(0u, min(4u, limit - x), x < limit);
}

/** A(i, k), or 0 outside the matrix. */
fn a_at(kind: u32, i: u32, k: u32) -> f32 {
  if (i >= p.rows || k >= p.depth) { return 0.0; }
  if (kind == BACKWARD_WEIGHT) { return a[p.off_a + k * p.lda + i]; }
  return a[p.off_a + i * p.lda + k];
}

/** B(k + u, col .. col + 3) for u < n (n <= 4, k + n <= depth; the rest 0). */
fn b_block(kind: u32, k: u32, n: u32, col: u32) -> array<vec4f, 4> {
  var v: array<vec4f, 4>;
  if (kind == FORWARD) {
    // Column j of B is row j of W, contiguous in k: four vector reads, transposed.
    for (var q = 0u; q < 4u; q++) {
      let j = col + q;
      if (j < p.cols) {
        let w = b_quad(p.off_b + j * p.ldb + k, n);
        for (var u = 0u; u < 4u; u++) { v[u][q] = w[u]; }
      }
    }
  } else {
    let n_cols = avail(col, p.cols);
    for (var u = 0u; u < 4u; u++) {
      if (u < n) { v[u] = b_quad(p.off_b + (k + u) * p.ldb + col, n_cols); }
    }
  }
  return v;
}

/** The 8x4 block of lane l over the whole reduction; the loop bounds depend only on p and gc. */
fn product(kind: u32, l: Lane, gc: u32) -> array<vec4f, 8> {
  var acc: array<vec4f, 8>;
  for (var k0 = 0u; k0 < p.depth; k0 += gc) {
    var lo: vec4f;
    var hi: vec4f;
    for (var q = 0u; q < 4u; q++) {
      lo[q] = a_at(kind, l.row + q, k0 + l.cg);
      hi[q] = a_at(kind, l.row + 4u + q, k0 + l.cg);
    }
    let steps = min(gc, p.depth - k0);
    for (var k4 = 0u; k4 < steps; k4 += 4u) {
      let n = min(4u, steps - k4);
      let bk = b_block(kind, k0 + k4, n, l.col);
      for (var u = 0u; u < n; u++) {
        let src = l.group_lane0 + k4 + u;
        let x0 = subgroupShuffle(lo, src);
        let x1 = subgroupShuffle(hi, src);
        for (var r = 0u; r < 4u; r++) {
          acc[r] += x0[r] * bk[u];
          acc[r + 4u] += x1[r] * bk[u];
        }
      }
    }
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

fn store(acc: array<vec4f, 8>, l: Lane, add: vec4f) {
  for (var r = 0u; r < 8u; r++) {
    let row = l.row + r;
    if (row >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = l.col + j;
      if (col >= p.cols) { break; }
      let idx = p.off_c + row * p.ldc + col;
      var v = p.alpha * acc[r][j] + add[j];
      if (p.beta != 0.0) {
        v += p.beta * c[idx];
      }
      c[idx] = v;
    }
  }
}

@compute @workgroup_size(128)
fn matmul_subgroup_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                           @builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) size: u32,
    @builtin(subgroup_invocation_id) lane: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let gc = lane_columns(size);
  let l = lane_place(tile_origin(tile), lid, size, lane, gc);
  store(product(FORWARD, l, gc), l, vec4f(0.0));
}

@compute @workgroup_size(128)
fn matmul_subgroup_forward_bias(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                                @builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) size: u32,
    @builtin(subgroup_invocation_id) lane: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let gc = lane_columns(size);
  let l = lane_place(tile_origin(tile), lid, size, lane, gc);
  let acc = product(FORWARD, l, gc);
  var add = vec4f(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (l.col + j < p.cols) { add[j] = bias[p.off_bias + l.col + j]; }
  }
  store(acc, l, add);
}

@compute @workgroup_size(128)
fn matmul_subgroup_backward_input(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                                  @builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) size: u32,
    @builtin(subgroup_invocation_id) lane: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let gc = lane_columns(size);
  let l = lane_place(tile_origin(tile), lid, size, lane, gc);
  store(product(BACKWARD_INPUT, l, gc), l, vec4f(0.0));
}

#if ${F32}
@compute @workgroup_size(128)
fn matmul_subgroup_backward_weight(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                                   @builtin(local_invocation_index) lid: u32, @builtin(subgroup_size) size: u32,
    @builtin(subgroup_invocation_id) lane: u32) {
  let tile = tile_index(wid, nwg, p.tiles_x * p.tiles_y);
  if (tile == 0xffffffffu) { return; }
  let gc = lane_columns(size);
  let l = lane_place(tile_origin(tile), lid, size, lane, gc);
  store(product(BACKWARD_WEIGHT, l, gc), l, vec4f(0.0));
}
#endif

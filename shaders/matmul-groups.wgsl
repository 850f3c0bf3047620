// The grouped forward's column-to-group map, appended to shaders/matmul.wgsl and
// shaders/matmul-vec4.wgsl by their wrappers (WGSL has no includes). Both declare the fields read
// here in their `struct Params` (col1, col2 and the per-group offsets) and the `bias` binding.
// Output columns [0, col1) are group 0 (off_b, off_c, ldc, off_bias), [col1, col2) group 1,
// [col2, cols) group 2; col1 or col2 = 0: no such group. Column j of group g reads W's row
// j - start_g at off_b_g and writes c[off_c_g + row * ldc_g + j - start_g].

struct Group {
  start: u32,
  off_b: u32,
  off_c: u32,
  ldc: u32,
  off_bias: u32,
}

fn group_of(col: u32) -> Group {
  if (p.col2 != 0u && col >= p.col2) { return Group(p.col2, p.off_b2, p.off_c2, p.ldc2, p.off_bias2); }
  if (p.col1 != 0u && col >= p.col1) { return Group(p.col1, p.off_b1, p.off_c1, p.ldc1, p.off_bias1); }
  return Group(0u, p.off_b, p.off_c, p.ldc, p.off_bias);
}

/** Forward: element offset of the start of W's row for output column col. */
fn w_row(col: u32) -> u32 {
  let g = group_of(col);
  return g.off_b + (col - g.start) * p.ldb;
}

fn out_index(row: u32, col: u32) -> u32 {
  let g = group_of(col);
  return g.off_c + row * g.ldc + col - g.start;
}

fn bias_at(col: u32) -> f32 {
  let g = group_of(col);
  return bias[g.off_bias + col - g.start];
}

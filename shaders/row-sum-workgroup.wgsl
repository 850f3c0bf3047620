// row_sum for the workgroup-per-row kernels (rmsnorm.wgsl) on devices without subgroups: a tree
// over the WG partial sums in workgroup memory (WG a power of two); every invocation gets the
// total. Appended to the kernel's source by its wrapper.

var<workgroup> partial: array<f32, WG>;

fn row_sum(lid: u32, value: f32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lid < stride) { partial[lid] = partial[lid] + partial[lid + stride]; }
    workgroupBarrier();
  }
  return partial[0];
}

// row_sum for the workgroup-per-row kernels (rmsnorm.wgsl) on devices with the `subgroups`
// feature: each subgroup sums its invocations' values in registers, its lowest invocation index
// names the workgroup slot that holds the result (every other slot holds 0, so nothing assumes how
// invocations are grouped or how large a subgroup is), and after one barrier every invocation adds
// the WG slots in index order, so all of them, on every run, get the same bits. One barrier where
// the tree takes log2(WG). Appended to the kernel's source by its wrapper, after `enable subgroups;`.

var<workgroup> partial: array<f32, WG>;

fn row_sum(lid: u32, value: f32) -> f32 {
  let total = subgroupAdd(value);
  partial[lid] = select(0.0, total, lid == subgroupMin(lid));
  workgroupBarrier();
  var sum = 0.0;
  for (var i = 0u; i < WG; i++) { sum += partial[i]; }
  return sum;
}

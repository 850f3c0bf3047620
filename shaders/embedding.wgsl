// Token embedding lookup.
// Forward: out[m, c] = table[ids[m] - row_start, c] for tokens whose id lies in
//          [row_start, row_start + row_count); rows of other tokens are left untouched.
// Accumulate: out[m, c] += alpha * table[ids[m] - row_start, c] for the same tokens: the
//          cross-entropy's gradient subtracts the target's lm_head row this way (src/kernels/cross-entropy.ts).
// Shapes: ids u32 [M], table [row_count, C] in its weight format (one piece of the [vocab, C] table), out f32 [M, C].
// The vocabulary table can exceed the storage binding limit (Qwen2.5: 151936 x 896 f32 = 519 MiB), so
// the engine splits it into pieces and calls this once per piece; each token is written by exactly
// the one piece that holds its row.
// No backward: embeddings are frozen in LoRA training, and nothing upstream of them needs a gradient.
// One invocation per output element; the grid may be split over x and y (see Gpu.grid).
// Weight formats: src/kernels/weight-shader.ts preprocesses this source into one module per format
// of the table. F32 reads it as f32; BF16 and F16 read u32 words of two 16-bit values
// (src/model/weight-format.ts) and widen the one element in table_at, so the output stays f32;
// BLOCK (GGUF block formats) reads u32 words of whole blocks and decodes the element with
// weight_value (shaders/weight-blocks.wgsl).

struct Params { M: u32, C: u32, row_start: u32, row_count: u32, alpha: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
#if ${F32}
@group(0) @binding(2) var<storage, read> table: array<f32>;
fn table_at(e: u32) -> f32 { return table[e]; }
#elif ${BLOCK}
@group(0) @binding(2) var<storage, read> table: array<u32>;
fn weight_word(i: u32) -> u32 { return table[i]; }
fn table_at(e: u32) -> f32 { return weight_value(e); }
#else
@group(0) @binding(2) var<storage, read> table: array<u32>;
fn table_at(e: u32) -> f32 { return widen_weight(table[e >> 1u], e); }
#endif
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn embedding_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.M * p.C) { return; }
  let m = i / p.C;
  let c = i - m * p.C;
  // Unsigned wrap-around makes ids below row_start huge, so one comparison covers both ends.
  let row = ids[m] - p.row_start;
  if (row >= p.row_count) { return; }
  out[i] = table_at(row * p.C + c);
}

@compute @workgroup_size(256)
fn embedding_accumulate(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.M * p.C) { return; }
  let m = i / p.C;
  let row = ids[m] - p.row_start;
  if (row >= p.row_count) { return; }
  out[i] += p.alpha * table_at(row * p.C + i - m * p.C);
}

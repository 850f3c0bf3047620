// Widening of packed 16-bit frozen weights to f32 (the layout is defined in src/model/weight-format.ts):
// element e of a matrix sits in word e >> 1, in the low half when e is even. Appended by
// src/kernels/weight-shader.ts to each shader that reads weight matrices when the format is bf16 or
// f16; those shaders read f32 weights directly.
// bf16 is the top half of an f32, so moving its 16 bits there is exact; f16 goes through
// unpack2x16float, which needs no shader-f16 feature.

#if ${BF16}
fn widen_weight(word: u32, e: u32) -> f32 {
  return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (e & 1u) == 1u));
}
#elif ${F16}
fn widen_weight(word: u32, e: u32) -> f32 {
  return unpack2x16float(word)[e & 1u];
}
#endif

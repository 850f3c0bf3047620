// Decoding of GGUF block-format frozen weights (ggml's block layouts; src/model/weight-format.ts,
// the CPU twins in src/gguf/quants): weight_value(e) is the f32 value of element e of a matrix whose
// rows are whole blocks, so element e is value e % BS of block e / BS, which starts at byte
// (e / BS) * BB of the binding. Appended by src/kernels/weight-shader.ts after shaders/weight-format.wgsl
// for a block format; the shader that includes it defines weight_word(i), word i of its weight binding.
// Blocks are 34, 18, 22, 24, 144, 176 or 210 bytes, mostly not whole words, so every field is read by byte
// offset out of the u32 words: a byte is 8 bits of word addr / 4, and an f16 (always at an even
// offset) half of one word, widened with unpack2x16float (no shader-f16 feature needed).
// One element per call: each call reads its block's scale(s) and its own quant bits again. Products
// and sums stay f32 in the caller.

fn weight_byte(addr: u32) -> u32 {
  return (weight_word(addr >> 2u) >> ((addr & 3u) * 8u)) & 0xffu;
}

fn weight_half(addr: u32) -> f32 {
  return unpack2x16float(weight_word(addr >> 2u))[(addr >> 1u) & 1u];
}

fn weight_i8(addr: u32) -> f32 {
  return f32(bitcast<i32>(weight_byte(addr) << 24u) >> 24u);
}

// Q4_K and Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 bytes at `at` (ggml's get_scale_min_k4).
fn k_scale_min(at: u32, j: u32) -> vec2f {
  if (j < 4u) {
    return vec2f(f32(weight_byte(at + j) & 63u), f32(weight_byte(at + j + 4u) & 63u));
  }
  let packed = weight_byte(at + j + 4u);
  let sc = (packed & 15u) | ((weight_byte(at + j - 4u) >> 6u) << 4u);
  let mn = (packed >> 4u) | ((weight_byte(at + j) >> 6u) << 4u);
  return vec2f(f32(sc), f32(mn));
}

#if ${Q8_0}
// 34 bytes per 32 values: f16 d, 32 int8 q; value = q * d.
fn weight_value(e: u32) -> f32 {
  let at = (e >> 5u) * 34u;
  return weight_i8(at + 2u + (e & 31u)) * weight_half(at);
}
#elif ${Q4_0}
// 18 bytes per 32 values: f16 d, 16 bytes of nibbles (value i < 16 low nibble of byte i, value i >= 16
// high nibble of byte i - 16); value = (nibble - 8) * d.
fn weight_value(e: u32) -> f32 {
  let at = (e >> 5u) * 18u;
  let i = e & 31u;
  let q = (weight_byte(at + 2u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  return (f32(q) - 8.0) * weight_half(at);
}
#elif ${Q5_0}
// 22 bytes per 32 values: f16 d, 4 bytes qh (bit i is the fifth bit of value i), 16 bytes of nibbles
// as Q4_0; value = (q - 16) * d.
fn weight_value(e: u32) -> f32 {
  let at = (e >> 5u) * 22u;
  let i = e & 31u;
  let low = (weight_byte(at + 6u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  let high = (weight_byte(at + 2u + (i >> 3u)) >> (i & 7u)) & 1u;
  return (f32(low | (high << 4u)) - 16.0) * weight_half(at);
}
#elif ${Q5_1}
// 24 bytes per 32 values: f16 d, f16 m, 4 bytes qh, 16 bytes of nibbles (as Q5_0); value = q * d + m.
fn weight_value(e: u32) -> f32 {
  let at = (e >> 5u) * 24u;
  let i = e & 31u;
  let low = (weight_byte(at + 8u + (i & 15u)) >> ((i >> 4u) * 4u)) & 15u;
  let high = (weight_byte(at + 4u + (i >> 3u)) >> (i & 7u)) & 1u;
  return f32(low | (high << 4u)) * weight_half(at) + weight_half(at + 2u);
}
#elif ${Q4_K}
// 144 bytes per 256 values: f16 d, f16 dmin, 12 bytes of scales and mins, 128 bytes of nibbles; sub-block
// j = i / 32, chunk c = i / 64: value i is nibble j % 2 of byte 16 + 32c + i % 32;
// value = d * sc_j * q - dmin * m_j.
fn weight_value(e: u32) -> f32 {
  let at = (e >> 8u) * 144u;
  let i = e & 255u;
  let j = i >> 5u;
  let q = (weight_byte(at + 16u + 32u * (i >> 6u) + (i & 31u)) >> ((j & 1u) * 4u)) & 15u;
  let sm = k_scale_min(at + 4u, j);
  return (weight_half(at) * sm.x) * f32(q) - weight_half(at + 2u) * sm.y;
}
#elif ${Q5_K}
// 176 bytes per 256 values: as Q4_K, then 32 bytes qh (bit j of byte i % 32 is the fifth bit of value i)
// before the 128 bytes of nibbles (at 48).
fn weight_value(e: u32) -> f32 {
  let at = (e >> 8u) * 176u;
  let i = e & 255u;
  let j = i >> 5u;
  let low = (weight_byte(at + 48u + 32u * (i >> 6u) + (i & 31u)) >> ((j & 1u) * 4u)) & 15u;
  let high = (weight_byte(at + 16u + (i & 31u)) >> j) & 1u;
  let sm = k_scale_min(at + 4u, j);
  return (weight_half(at) * sm.x) * f32(low | (high << 4u)) - weight_half(at + 2u) * sm.y;
}
#elif ${Q6_K}
// 210 bytes per 256 values: 128 bytes ql, 64 bytes qh, 16 int8 scales, f16 d. Half n = i / 128,
// group g = (i / 32) % 4, l = i % 32: low 4 bits in ql[64n + 32(g % 2) + l] (high nibble when g >= 2),
// high 2 bits at 2g in qh[32n + l], scale 8n + l / 16 + 2g; value = d * scale * (q - 32).
fn weight_value(e: u32) -> f32 {
  let at = (e >> 8u) * 210u;
  let i = e & 255u;
  let n = i >> 7u;
  let g = (i >> 5u) & 3u;
  let l = i & 31u;
  let low = (weight_byte(at + 64u * n + 32u * (g & 1u) + l) >> ((g >> 1u) * 4u)) & 15u;
  let high = (weight_byte(at + 128u + 32u * n + l) >> (2u * g)) & 3u;
  let scale = weight_half(at + 208u) * weight_i8(at + 192u + 8u * n + (l >> 4u) + 2u * g);
  return scale * (f32(low | (high << 4u)) - 32.0);
}
#endif

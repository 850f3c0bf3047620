/**
 * The q/k row permutation of llama-architecture GGUF files. Hugging Face Llama weights rotate
 * each head's dimension i with i + d/2 (half-split RoPE); llama.cpp runs the `llama`
 * architecture with interleaved RoPE (dimension 2i with 2i + 1), so convert_hf_to_gguf reorders
 * the rows of q_proj and k_proj head by head, `w.reshape(heads, 2, d/2, in).swapaxes(1, 2)`:
 * GGUF row h*d + 2j + s is HF row h*d + s*(d/2) + j. Both layouts give the same attention
 * scores under their own RoPE. Qwen2 GGUF files (NEOX RoPE, half-split) are not permuted.
 *
 * Where webtune undoes it: gguf/weights.ts reads `attn_q.weight` / `attn_k.weight` of a llama
 * file and applies `toHalfSplit` (query heads for q, kv heads for k) before the engine sees the
 * tensor, so the engine's half-split RoPE kernel stays the only RoPE. gguf/model-writer.ts
 * applies `toInterleaved` when writing. Rows move whole, so the same permutation applies to
 * quantized rows (each row is a whole number of blocks) without dequantizing them.
 */

/** `order[dst] = src` row indices for `rows` rows in `heads` heads. */
function rowOrder(rows: number, heads: number, direction: 'toInterleaved' | 'toHalfSplit'): Int32Array {
  const headDim = rows / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new RangeError(`rotary permutation: ${rows} rows are not ${heads} heads of an even size`);
  }
  const half = headDim / 2;
  const order = new Int32Array(rows);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let s = 0; s < 2; s++) {
        const interleaved = h * headDim + 2 * j + s;
        const halfSplit = h * headDim + s * half + j;
        if (direction === 'toInterleaved') order[interleaved] = halfSplit;
        else order[halfSplit] = interleaved;
      }
    }
  }
  return order;
}

function permute<A extends Float32Array | Uint8Array>(data: A, rows: number, heads: number, direction: 'toInterleaved' | 'toHalfSplit'): A {
  if (data.length % rows !== 0) throw new RangeError(`rotary permutation: ${data.length} values are not ${rows} rows`);
  const unit = data.length / rows;
  const order = rowOrder(rows, heads, direction);
  const out = new (data.constructor as new (n: number) => A)(data.length);
  for (let dst = 0; dst < rows; dst++) out.set(data.subarray(order[dst] * unit, (order[dst] + 1) * unit), dst * unit);
  return out;
}

/** HF half-split rows -> llama.cpp interleaved rows (what convert_hf_to_gguf writes). */
export function toInterleaved<A extends Float32Array | Uint8Array>(data: A, rows: number, heads: number): A {
  return permute(data, rows, heads, 'toInterleaved');
}

/** llama.cpp interleaved rows -> HF half-split rows (undoes `toInterleaved`). */
export function toHalfSplit<A extends Float32Array | Uint8Array>(data: A, rows: number, heads: number): A {
  return permute(data, rows, heads, 'toHalfSplit');
}

/**
 * llama.cpp's convert_hf_to_gguf `permute`, transcribed index by index from NumPy semantics:
 * w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols), i.e.
 * out[h, j, s, c] = in[h, s, j, c] in C order. The independent reference for src/gguf/rotary.ts.
 */
export function numpyPermute(w: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const half = rows / nHead / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < half; j++)
      for (let s = 0; s < 2; s++)
        for (let c = 0; c < cols; c++) out[((h * half + j) * 2 + s) * cols + c] = w[((h * 2 + s) * half + j) * cols + c];
  return out;
}

import { describe, expect, it } from 'vitest';
import { numpyPermute } from '../reference/rotary-permute';
import { toHalfSplit, toInterleaved } from '../../src/gguf/rotary';
import { randomArray } from '../helpers/numeric';
import { ropeRef } from '../reference/rope';

/** llama.cpp's interleaved (GGML_ROPE_TYPE_NORM) rotation: pairs (2i, 2i + 1) turn by pos * theta^(-2i/d). */
function ropeInterleaved(x: Float64Array, heads: number, d: number, theta: number, pos: number): Float64Array {
  const y = new Float64Array(x);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < d / 2; i++) {
      const angle = pos * theta ** (-(2 * i) / d);
      const [a, b] = [x[h * d + 2 * i], x[h * d + 2 * i + 1]];
      y[h * d + 2 * i] = a * Math.cos(angle) - b * Math.sin(angle);
      y[h * d + 2 * i + 1] = a * Math.sin(angle) + b * Math.cos(angle);
    }
  }
  return y;
}

function matvec(w: Float32Array, rows: number, x: Float32Array): Float64Array {
  const cols = x.length;
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r] += w[r * cols + c] * x[c];
  return y;
}

/** q . k per query head (GQA: kv head h / group). */
function scores(q: Float64Array, k: Float64Array, heads: number, kvHeads: number, d: number): number[] {
  return Array.from({ length: heads }, (_, h) => {
    const kh = Math.floor(h / (heads / kvHeads));
    let s = 0;
    for (let i = 0; i < d; i++) s += q[h * d + i] * k[kh * d + i];
    return s;
  });
}

describe('q/k rotary row permutation', () => {
  it('toHalfSplit undoes toInterleaved, for f32 rows and for rows of raw (quantized) bytes', () => {
    const rows = 3 * 10;
    const w = randomArray(rows * 7, 1);
    expect(Array.from(toHalfSplit(toInterleaved(w, rows, 3), rows, 3))).toEqual(Array.from(w));
    expect(Array.from(toInterleaved(w, rows, 3))).not.toEqual(Array.from(w));
    const bytes = Uint8Array.from({ length: rows * 34 }, (_, i) => (i * 37) % 256);
    const moved = toInterleaved(bytes, rows, 3);
    expect(moved).toBeInstanceOf(Uint8Array);
    expect(toHalfSplit(moved, rows, 3)).toEqual(bytes);
    // Row 1 of the interleaved layout is row d/2 = 5 of the half-split one, whole.
    expect(moved.subarray(34, 68)).toEqual(bytes.subarray(5 * 34, 6 * 34));
  });

  it("is convert_hf_to_gguf's permutation (NumPy's reshape and swapaxes, transcribed)", () => {
    for (const [rows, cols, heads] of [
      [64, 3, 8],
      [40, 5, 4],
      [72, 2, 1],
    ]) {
      const w = randomArray(rows * cols, rows + cols);
      expect(Array.from(toInterleaved(w, rows, heads))).toEqual(Array.from(numpyPermute(w, rows, cols, heads)));
    }
    // The hand-worked example of the export test: each head [a0 a1 | b0 b1] becomes [a0 b0 a1 b1].
    expect(Array.from(toInterleaved(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 8, 2))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect(Array.from(toHalfSplit(Float32Array.from([0, 2, 1, 3, 4, 6, 5, 7]), 8, 2))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('rows unpermuted from a llama GGUF give, under half-split RoPE, the attention scores llama.cpp gets with interleaved RoPE', () => {
    // GQA 3:1, head size 72, an awkward input width: the q/k weights as a llama GGUF stores them.
    const [heads, kvHeads, d, cols, theta] = [6, 2, 72, 67, 10000];
    const ggufQ = randomArray(heads * d * cols, 21);
    const ggufK = randomArray(kvHeads * d * cols, 22);
    const hfQ = toHalfSplit(ggufQ, heads * d, heads);
    const hfK = toHalfSplit(ggufK, kvHeads * d, kvHeads);
    const xq = randomArray(cols, 23);
    const xk = randomArray(cols, 24);
    const shape = (n: number, pos: number) => ({ M: 1, T: 1, nHeads: n, headDim: d, theta, positionOffset: pos });
    for (const [pq, pk] of [
      [0, 0],
      [5, 2],
      [17, 17],
      [300, 1],
    ]) {
      const llamaCpp = scores(
        ropeInterleaved(matvec(ggufQ, heads * d, xq), heads, d, theta, pq),
        ropeInterleaved(matvec(ggufK, kvHeads * d, xk), kvHeads, d, theta, pk),
        heads,
        kvHeads,
        d,
      );
      const webtune = scores(
        ropeRef(matvec(hfQ, heads * d, xq), shape(heads, pq)),
        ropeRef(matvec(hfK, kvHeads * d, xk), shape(kvHeads, pk)),
        heads,
        kvHeads,
        d,
      );
      for (let h = 0; h < heads; h++) expect(webtune[h]).toBeCloseTo(llamaCpp[h], 9);
      // Reading the GGUF rows as they are (no unpermutation) would pair the wrong dimensions.
      const wrong = scores(
        ropeRef(matvec(ggufQ, heads * d, xq), shape(heads, pq)),
        ropeRef(matvec(ggufK, kvHeads * d, xk), shape(kvHeads, pk)),
        heads,
        kvHeads,
        d,
      );
      if (pq !== pk) expect(wrong.some((s, h) => Math.abs(s - llamaCpp[h]) > 1e-3)).toBe(true);
    }
  });

  it('refuses row counts that are not whole heads of an even size', () => {
    expect(() => toInterleaved(new Float32Array(30), 30, 4)).toThrow(RangeError);
    expect(() => toHalfSplit(new Float32Array(27), 9, 3)).toThrow(/not 3 heads of an even size/);
  });
});

/** float64 reference: out[m, :] = table[ids[m], :] over the whole [vocab, C] table. */
export function embeddingForwardRef(ids: ArrayLike<number>, table: Float64Array, C: number): Float64Array {
  const out = new Float64Array(ids.length * C);
  for (let m = 0; m < ids.length; m++) {
    for (let c = 0; c < C; c++) out[m * C + c] = table[ids[m] * C + c];
  }
  return out;
}

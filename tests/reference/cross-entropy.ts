/** float64 reference: logits [M, V] = hidden [M, C] E^T with E [V, C]. */
export function logitsRef(hidden: Float64Array, E: Float64Array, M: number, C: number, V: number): Float64Array {
  const logits = new Float64Array(M * V);
  for (let m = 0; m < M; m++) {
    for (let v = 0; v < V; v++) {
      let acc = 0;
      for (let c = 0; c < C; c++) acc += hidden[m * C + c] * E[v * C + c];
      logits[m * V + v] = acc;
    }
  }
  return logits;
}

/**
 * float64 reference of softmax cross-entropy with targets outside [0, V) ignored: per-row loss
 * lse - logit[target], the mean over counted rows, and dHidden = sum_v (softmax - onehot) * lossScale * E[v].
 */
export function crossEntropyRef(
  hidden: Float64Array,
  E: Float64Array,
  targets: Int32Array,
  M: number,
  C: number,
  V: number,
  lossScale: number,
): { lse: Float64Array; rowLoss: Float64Array; meanLoss: number; count: number; dHidden: Float64Array } {
  const logits = logitsRef(hidden, E, M, C, V);
  const lse = new Float64Array(M);
  const rowLoss = new Float64Array(M);
  const dHidden = new Float64Array(M * C);
  let total = 0;
  let count = 0;
  for (let m = 0; m < M; m++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[m * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[m * V + v] - max);
    lse[m] = max + Math.log(sum);
    const t = targets[m];
    if (t < 0 || t >= V) continue;
    rowLoss[m] = lse[m] - logits[m * V + t];
    total += rowLoss[m];
    count++;
    for (let v = 0; v < V; v++) {
      const g = (Math.exp(logits[m * V + v] - lse[m]) - (v === t ? 1 : 0)) * lossScale;
      for (let c = 0; c < C; c++) dHidden[m * C + c] += g * E[v * C + c];
    }
  }
  return { lse, rowLoss, meanLoss: total / count, count, dHidden };
}

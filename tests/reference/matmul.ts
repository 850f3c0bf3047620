/** float64 reference: Y [M,N] = X [M,K] W^T (W [N,K]). */
export function matmulXWtRef(X: Float64Array, W: Float64Array, M: number, N: number, K: number): Float64Array {
  const Y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += X[m * K + k] * W[n * K + k];
      Y[m * N + n] = s;
    }
  }
  return Y;
}

/** float64 reference: dX [M,K] = dY [M,N] W [N,K]. */
export function matmulDyWRef(dY: Float64Array, W: Float64Array, M: number, N: number, K: number): Float64Array {
  const dX = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dY[m * N + n] * W[n * K + k];
      dX[m * K + k] = s;
    }
  }
  return dX;
}

/** float64 reference: dW [N,K] = dY [M,N]^T X [M,K]. */
export function matmulDyTXRef(dY: Float64Array, X: Float64Array, M: number, N: number, K: number): Float64Array {
  const dW = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += dY[m * N + n] * X[m * K + k];
      dW[n * K + k] = s;
    }
  }
  return dW;
}

/** alpha * product + beta * old (+ bias[col] over rows of length `cols`). */
export function combineRef(product: Float64Array, alpha: number, beta: number, old?: Float64Array, bias?: Float64Array): Float64Array {
  const out = new Float64Array(product.length);
  for (let i = 0; i < product.length; i++) {
    out[i] = alpha * product[i] + (beta !== 0 && old ? beta * old[i] : 0) + (bias ? bias[i % bias.length] : 0);
  }
  return out;
}

/** The LoRA epilogue: base [M,N] + s * u [M,r] B^T (B [N,r]), the up-projection added after everything else. */
export function loraEpilogueRef(
  base: Float64Array,
  u: Float64Array,
  B: Float64Array,
  M: number,
  N: number,
  r: number,
  s: number,
): Float64Array {
  const up = matmulXWtRef(u, B, M, N, r);
  return base.map((v, i) => v + s * up[i]);
}

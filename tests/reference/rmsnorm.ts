import { residualForwardRef } from './residual';

/** float64 reference: y = x / sqrt(mean(x^2) + eps) * w per row of x [M, C], with rstd [M]. */
export function rmsnormForwardRef(
  x: Float64Array,
  w: Float64Array,
  M: number,
  C: number,
  eps: number,
): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(M * C);
  const rstd = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let sumSq = 0;
    for (let c = 0; c < C; c++) sumSq += x[m * C + c] ** 2;
    rstd[m] = 1 / Math.sqrt(sumSq / C + eps);
    for (let c = 0; c < C; c++) y[m * C + c] = x[m * C + c] * rstd[m] * w[c];
  }
  return { y, rstd };
}

/** float64 reference: d loss / d x of rmsnorm given dy (the gradient itself, not accumulated). */
export function rmsnormBackwardRef(dy: Float64Array, x: Float64Array, w: Float64Array, M: number, C: number, eps: number): Float64Array {
  const { rstd } = rmsnormForwardRef(x, w, M, C, eps);
  const dx = new Float64Array(M * C);
  for (let m = 0; m < M; m++) {
    const r = rstd[m];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dy[m * C + c] * w[c] * x[m * C + c];
    for (let c = 0; c < C; c++) {
      dx[m * C + c] = r * dy[m * C + c] * w[c] - (r ** 3 * x[m * C + c] * dot) / C;
    }
  }
  return dx;
}

/** float64 reference of the fused residual and norm: h = x + branch, then rmsnormForwardRef of h. */
export function residualRmsnormForwardRef(
  x: Float64Array,
  branch: Float64Array,
  w: Float64Array,
  M: number,
  C: number,
  eps: number,
): { h: Float64Array; y: Float64Array; rstd: Float64Array } {
  const h = residualForwardRef(x, branch);
  return { h, ...rmsnormForwardRef(h, w, M, C, eps) };
}

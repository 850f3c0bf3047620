/** Shapes of one adapted projection: x [M,in], A [r,in], B [out,r], y [M,out]. */
export interface LoraRefDims {
  M: number;
  inFeatures: number;
  outFeatures: number;
  r: number;
}

/** Dropout as the reference sees it: which elements of x survive, and the inverted-dropout scale. */
export interface RefMask {
  kept: (index: number) => boolean;
  scale: number;
}

const NO_DROPOUT: RefMask = { kept: () => true, scale: 1 };

/** float64 reference of the LoRA forward: y = y0 + s * drop(x) A^T B^T, u = drop(x) A^T. */
export function loraForwardRef(
  x: Float64Array,
  A: Float64Array,
  B: Float64Array,
  y0: Float64Array,
  d: LoraRefDims,
  s: number,
  mask: RefMask = NO_DROPOUT,
): { xDrop: Float64Array; u: Float64Array; y: Float64Array } {
  const { M, inFeatures: I, outFeatures: O, r } = d;
  const xDrop = new Float64Array(M * I);
  for (let i = 0; i < M * I; i++) xDrop[i] = mask.kept(i) ? x[i] * mask.scale : 0;
  const u = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let c = 0; c < I; c++) acc += xDrop[m * I + c] * A[j * I + c];
      u[m * r + j] = acc;
    }
  }
  const y = Float64Array.from(y0);
  for (let m = 0; m < M; m++) {
    for (let o = 0; o < O; o++) {
      let acc = 0;
      for (let j = 0; j < r; j++) acc += u[m * r + j] * B[o * r + j];
      y[m * O + o] += s * acc;
    }
  }
  return { xDrop, u, y };
}

/**
 * float64 reference of the LoRA backward for dy = dL/dy: dB = s dy^T u, du = s dy B,
 * dA = du^T drop(x), dxAdapter = drop'(du A) (the adapter's share of dL/dx only).
 */
export function loraBackwardRef(
  dy: Float64Array,
  x: Float64Array,
  A: Float64Array,
  B: Float64Array,
  d: LoraRefDims,
  s: number,
  mask: RefMask = NO_DROPOUT,
): { dA: Float64Array; dB: Float64Array; du: Float64Array; dxAdapter: Float64Array } {
  const { M, inFeatures: I, outFeatures: O, r } = d;
  const { xDrop, u } = loraForwardRef(x, A, B, new Float64Array(M * O), d, s, mask);
  const dB = new Float64Array(O * r);
  for (let o = 0; o < O; o++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += dy[m * O + o] * u[m * r + j];
      dB[o * r + j] = s * acc;
    }
  }
  const du = new Float64Array(M * r);
  for (let m = 0; m < M; m++) {
    for (let j = 0; j < r; j++) {
      let acc = 0;
      for (let o = 0; o < O; o++) acc += dy[m * O + o] * B[o * r + j];
      du[m * r + j] = s * acc;
    }
  }
  const dA = new Float64Array(r * I);
  for (let j = 0; j < r; j++) {
    for (let c = 0; c < I; c++) {
      let acc = 0;
      for (let m = 0; m < M; m++) acc += du[m * r + j] * xDrop[m * I + c];
      dA[j * I + c] = acc;
    }
  }
  const dxAdapter = new Float64Array(M * I);
  for (let m = 0; m < M; m++) {
    for (let c = 0; c < I; c++) {
      const i = m * I + c;
      if (!mask.kept(i)) continue;
      let acc = 0;
      for (let j = 0; j < r; j++) acc += du[m * r + j] * A[j * I + c];
      dxAdapter[i] = mask.scale * acc;
    }
  }
  return { dA, dB, du, dxAdapter };
}

export interface AdamWRefState {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/**
 * float64 reference of one AdamW step (decoupled weight decay, textbook formula), in place:
 * g = grad * clip; p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
 */
export function adamwStepRef(
  s: AdamWRefState,
  grad: Float64Array,
  clip: number,
  h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number },
): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  for (let i = 0; i < s.p.length; i++) {
    const g = grad[i] * clip;
    s.p[i] -= h.lr * h.weightDecay * s.p[i];
    s.m[i] = h.beta1 * s.m[i] + (1 - h.beta1) * g;
    s.v[i] = h.beta2 * s.v[i] + (1 - h.beta2) * g * g;
    s.p[i] -= (h.lr * (s.m[i] / bc1)) / (Math.sqrt(s.v[i] / bc2) + h.eps);
  }
}

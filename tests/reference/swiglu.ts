const sigmoid = (g: number): number => 1 / (1 + Math.exp(-g));

/** float64 reference: out = g * sigmoid(g) * up. */
export function swigluForwardRef(gate: Float64Array, up: Float64Array): Float64Array {
  const out = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

/** float64 reference gradients of out = silu(gate) * up. */
export function swigluBackwardRef(dout: Float64Array, gate: Float64Array, up: Float64Array): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    const s = sigmoid(g);
    dgate[i] = dout[i] * up[i] * (s + g * s * (1 - s));
    dup[i] = dout[i] * g * s;
  }
  return { dgate, dup };
}

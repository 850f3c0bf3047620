/**
 * float64 reference of storing weights as bfloat16 or float16: round to nearest, ties to even, by
 * plain arithmetic on the value (no bit manipulation, nothing shared with src/). A kernel test
 * rounds its weights here, computes in float64, and compares with the GPU reading the packed
 * 16-bit copy the engine made of the same f32 weights.
 */

export type RoundedFormat = 'f32' | 'bf16' | 'f16';

/** Significant bits and the smallest normal exponent of each format. */
const FORMATS = {
  f32: { bits: 24, minExponent: -126, max: (2 - 2 ** -23) * 2 ** 127 },
  bf16: { bits: 8, minExponent: -126, max: (2 - 2 ** -7) * 2 ** 127 },
  f16: { bits: 11, minExponent: -14, max: 65504 },
} as const;

function halfEven(q: number): number {
  const floor = Math.floor(q);
  const frac = q - floor;
  if (frac !== 0.5) return frac < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** x rounded to the nearest value of `format` (ties to even); beyond its largest finite value, +-Infinity. */
export function roundTo(format: RoundedFormat, x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const { bits, minExponent, max } = FORMATS[format];
  const a = Math.abs(x);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  // Below the smallest normal the spacing stays that of the smallest normal binade (subnormals).
  const step = 2 ** (Math.max(e, minExponent) - (bits - 1));
  const rounded = halfEven(a / step) * step;
  return Math.sign(x) * (rounded > max ? Infinity : rounded);
}

/** Every element of `values` rounded to `format`, as float64. */
export function roundAllTo(format: RoundedFormat, values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values, (v) => roundTo(format, v));
}

/** The value of 16-bit storage bits, decoded by arithmetic (the reference reading of a packed weight). */
export function decode16(format: 'bf16' | 'f16', bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const [exponentBits, fractionBits, bias] = format === 'bf16' ? [8, 7, 127] : [5, 10, 15];
  const exponent = (bits >> fractionBits) & ((1 << exponentBits) - 1);
  const fraction = bits & ((1 << fractionBits) - 1);
  if (exponent === (1 << exponentBits) - 1) return fraction ? NaN : sign * Infinity;
  if (exponent === 0) return sign * fraction * 2 ** (1 - bias - fractionBits);
  return sign * (1 + fraction / 2 ** fractionBits) * 2 ** (exponent - bias);
}

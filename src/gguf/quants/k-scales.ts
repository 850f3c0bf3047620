/**
 * Shared by Q4_K and Q5_K (ggml `block_q4_K` / `block_q5_K`): a 256-value super-block of eight
 * 32-value sub-blocks, value = d * sc_j * q - dmin * m_j, with f16 super-scales d, dmin and 6-bit
 * sub-block scales sc_j and mins m_j packed into 12 bytes (ggml's `get_scale_min_k4`):
 *   j < 4:  sc_j = s[j] & 63,                        m_j = s[j + 4] & 63
 *   j >= 4: sc_j = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4, m_j = (s[j + 4] >> 4) | (s[j] >> 6) << 4
 * The quantizer fits each sub-block's (scale, min) by a weighted least-squares search over a few
 * grid stretches, the approach of ggml's `make_qkx2_quants`, then rounds them to 6 bits under the
 * super-scales and requantizes every value against the rounded grid.
 */
import { HALF_MAX, halfTable, toHalfBits } from './half';

export const QK_K = 256;
const SUB = 32;

/** Sub-block j's 6-bit scale and min from the 12 packed bytes at `at`. */
export function scaleMinK4(j: number, bytes: Uint8Array, at: number): [scale: number, min: number] {
  if (j < 4) return [bytes[at + j] & 63, bytes[at + j + 4] & 63];
  return [(bytes[at + j + 4] & 0x0f) | ((bytes[at + j - 4] >> 6) << 4), (bytes[at + j + 4] >> 4) | ((bytes[at + j] >> 6) << 4)];
}

function packScaleMinK4(scales: Uint8Array, mins: Uint8Array, out: Uint8Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const ls = scales[j];
    const lm = mins[j];
    if (j < 4) {
      out[at + j] |= ls;
      out[at + j + 4] |= lm;
    } else {
      out[at + j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
      out[at + j - 4] |= (ls >> 4) << 6;
      out[at + j] |= (lm >> 4) << 6;
    }
  }
}

interface Search {
  rmin: number;
  rdelta: number;
  nstep: number;
}

/** Fits x[i] ~ scale * q_i - min, q_i in [0, nmax], min >= 0, weighting each value by `w`; returns [scale, min]. */
function fitScaleMin(x: Float32Array, at: number, w: Float64Array, nmax: number, search: Search): [number, number] {
  let lo = x[at];
  let hi = x[at];
  let sumW = 0;
  let sumX = 0;
  for (let i = 0; i < SUB; i++) {
    const v = x[at + i];
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
    sumW += w[i];
    sumX += w[i] * v;
  }
  // The offset is a min that is subtracted, so the grid always reaches down to 0 or below.
  lo = Math.min(lo, 0);
  if (hi === lo) return [0, -lo];
  const error = (scale: number, offset: number, iscale: number) => {
    let e = 0;
    for (let i = 0; i < SUB; i++) {
      const q = Math.max(0, Math.min(nmax, Math.round(iscale * (x[at + i] - lo))));
      const diff = scale * q + offset - x[at + i];
      e += w[i] * diff * diff;
    }
    return e;
  };
  let bestScale = (hi - lo) / nmax;
  let bestOffset = lo;
  let bestError = error(bestScale, bestOffset, nmax / (hi - lo));
  for (let step = 0; step <= search.nstep; step++) {
    const iscale = (search.rmin + search.rdelta * step + nmax) / (hi - lo);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < SUB; i++) {
      const q = Math.max(0, Math.min(nmax, Math.round(iscale * (x[at + i] - lo))));
      sumL += w[i] * q;
      sumL2 += w[i] * q * q;
      sumXL += w[i] * q * x[at + i];
    }
    const det = sumW * sumL2 - sumL * sumL;
    if (det <= 0) continue;
    let scale = (sumW * sumXL - sumX * sumL) / det;
    let offset = (sumL2 * sumX - sumL * sumXL) / det;
    if (offset > 0) {
      offset = 0;
      scale = sumXL / sumL2;
    }
    const e = error(scale, offset, iscale);
    if (e < bestError) {
      bestError = e;
      bestScale = scale;
      bestOffset = offset;
    }
  }
  return [bestScale, -bestOffset];
}

/**
 * Quantizes whole super-blocks: `writeQuants(block, at, q)` stores the 256 integer levels of one
 * block into its bytes; the header (d, dmin, scales) is written here at offsets 0..15.
 */
export function quantizeKWithMins(
  x: Float32Array,
  blockBytes: number,
  nmax: number,
  search: Search,
  writeQuants: (out: Uint8Array, at: number, q: Uint8Array) => void,
): Uint8Array {
  const nb = x.length / QK_K;
  const subScales = new Float64Array(nb * 8);
  const subMins = new Float64Array(nb * 8);
  const supers = new Float32Array(nb * 2);
  const w = new Float64Array(SUB);
  for (let b = 0; b < nb; b++) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const at = b * QK_K + j * SUB;
      let sum2 = 0;
      for (let i = 0; i < SUB; i++) sum2 += x[at + i] * x[at + i];
      const av = Math.sqrt(sum2 / SUB);
      for (let i = 0; i < SUB; i++) w[i] = av + Math.abs(x[at + i]);
      const [scale, min] = fitScaleMin(x, at, w, nmax, search);
      subScales[b * 8 + j] = scale;
      subMins[b * 8 + j] = min;
      maxScale = Math.max(maxScale, scale);
      maxMin = Math.max(maxMin, min);
    }
    supers[2 * b] = Math.min(maxScale / 63, HALF_MAX);
    supers[2 * b + 1] = Math.min(maxMin / 63, HALF_MAX);
  }
  const bits = toHalfBits(supers);
  const half = halfTable();
  const out = new Uint8Array(nb * blockBytes);
  const ls = new Uint8Array(8);
  const lm = new Uint8Array(8);
  const q = new Uint8Array(QK_K);
  for (let b = 0; b < nb; b++) {
    const at = b * blockBytes;
    out[at] = bits[2 * b] & 0xff;
    out[at + 1] = bits[2 * b] >> 8;
    out[at + 2] = bits[2 * b + 1] & 0xff;
    out[at + 3] = bits[2 * b + 1] >> 8;
    const d = half[bits[2 * b]];
    const dmin = half[bits[2 * b + 1]];
    for (let j = 0; j < 8; j++) {
      ls[j] = d > 0 ? Math.min(63, Math.round(subScales[b * 8 + j] / d)) : 0;
      lm[j] = dmin > 0 ? Math.min(63, Math.round(subMins[b * 8 + j] / dmin)) : 0;
    }
    packScaleMinK4(ls, lm, out, at + 4);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(j, out, at + 4);
      const step = Math.fround(d * sc);
      const offset = Math.fround(dmin * m);
      for (let i = 0; i < SUB; i++) {
        const v = x[b * QK_K + j * SUB + i];
        q[j * SUB + i] = step > 0 ? Math.max(0, Math.min(nmax, Math.round((v + offset) / step))) : 0;
      }
    }
    writeQuants(out, at, q);
  }
  return out;
}

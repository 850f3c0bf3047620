/**
 * float64 CPU reference of the whole Llama forward pass with LoRA (plain loops, Hugging Face
 * semantics), for finite-difference checks of the GPU engine's gradients. Written independently
 * of the engine: it shares no code with src/.
 */

export interface RefConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
}

/** Weights by Hugging Face name; adapter tensors by PEFT name. */
export type RefTensors = Map<string, Float64Array>;

function linear(x: Float64Array, M: number, inF: number, w: Float64Array, outF: number, bias?: Float64Array): Float64Array {
  const y = new Float64Array(M * outF);
  for (let m = 0; m < M; m++)
    for (let o = 0; o < outF; o++) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inF; i++) s += x[m * inF + i] * w[o * inF + i];
      y[m * outF + o] = s;
    }
  return y;
}

function rmsnorm(x: Float64Array, M: number, C: number, w: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(M * C);
  for (let m = 0; m < M; m++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[m * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) y[m * C + c] = x[m * C + c] * r * w[c];
  }
  return y;
}

function rope(x: Float64Array, B: number, T: number, heads: number, D: number, theta: number): void {
  const half = D / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < heads; h++) {
        const base = ((b * T + t) * heads + h) * D;
        for (let i = 0; i < half; i++) {
          const angle = t * Math.pow(theta, (-2 * i) / D);
          const c = Math.cos(angle);
          const s = Math.sin(angle);
          const x1 = x[base + i];
          const x2 = x[base + i + half];
          x[base + i] = x1 * c - x2 * s;
          x[base + i + half] = x2 * c + x1 * s;
        }
      }
}

export function referenceLoss(
  config: RefConfig,
  weights: RefTensors,
  adapter: RefTensors,
  scaling: number,
  inputIds: number[][],
  labels: number[][],
): number {
  const { hiddenSize: C, numHeads: H, numKvHeads: KV, headDim: D, intermediateSize: I, vocabSize: V } = config;
  const B = inputIds.length;
  const T = inputIds[0].length;
  const M = B * T;
  const get = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference: missing ${name}`);
    return t;
  };
  const project = (l: number, block: string, target: string, x: Float64Array, inF: number, outF: number, bias?: Float64Array) => {
    const y = linear(x, M, inF, get(`model.layers.${l}.${block}.${target}.weight`), outF, bias);
    const prefix = `base_model.model.model.layers.${l}.${block}.${target}`;
    const A = adapter.get(`${prefix}.lora_A.weight`);
    const Bm = adapter.get(`${prefix}.lora_B.weight`);
    if (A && Bm) {
      const r = A.length / inF;
      const u = linear(x, M, inF, A, r);
      const z = linear(u, M, r, Bm, outF);
      for (let i = 0; i < y.length; i++) y[i] += scaling * z[i];
    }
    return y;
  };

  const emb = get('model.embed_tokens.weight');
  let x = new Float64Array(M * C);
  for (let m = 0; m < M; m++) {
    const id = inputIds[Math.floor(m / T)][m % T];
    for (let c = 0; c < C; c++) x[m * C + c] = emb[id * C + c];
  }
  for (let l = 0; l < config.numLayers; l++) {
    const n1 = rmsnorm(x, M, C, get(`model.layers.${l}.input_layernorm.weight`), config.rmsNormEps);
    const bias = (name: string) => (config.qkvBias ? get(`model.layers.${l}.self_attn.${name}.bias`) : undefined);
    const q = project(l, 'self_attn', 'q_proj', n1, C, H * D, bias('q_proj'));
    const k = project(l, 'self_attn', 'k_proj', n1, C, KV * D, bias('k_proj'));
    const v = project(l, 'self_attn', 'v_proj', n1, C, KV * D, bias('v_proj'));
    rope(q, B, T, H, D, config.ropeTheta);
    rope(k, B, T, KV, D, config.ropeTheta);
    const attn = new Float64Array(M * H * D);
    const group = H / KV;
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / group);
        for (let t = 0; t < T; t++) {
          const scores = new Float64Array(t + 1);
          let max = -Infinity;
          for (let j = 0; j <= t; j++) {
            let s = 0;
            for (let d = 0; d < D; d++) s += q[((b * T + t) * H + h) * D + d] * k[((b * T + j) * KV + kvh) * D + d];
            scores[j] = s / Math.sqrt(D);
            max = Math.max(max, scores[j]);
          }
          let sum = 0;
          for (let j = 0; j <= t; j++) sum += (scores[j] = Math.exp(scores[j] - max));
          for (let d = 0; d < D; d++) {
            let o = 0;
            for (let j = 0; j <= t; j++) o += (scores[j] / sum) * v[((b * T + j) * KV + kvh) * D + d];
            attn[((b * T + t) * H + h) * D + d] = o;
          }
        }
      }
    const o = project(l, 'self_attn', 'o_proj', attn, H * D, C);
    const h = new Float64Array(M * C);
    for (let i = 0; i < h.length; i++) h[i] = x[i] + o[i];
    const n2 = rmsnorm(h, M, C, get(`model.layers.${l}.post_attention_layernorm.weight`), config.rmsNormEps);
    const gate = project(l, 'mlp', 'gate_proj', n2, C, I);
    const up = project(l, 'mlp', 'up_proj', n2, C, I);
    const act = new Float64Array(M * I);
    for (let i = 0; i < act.length; i++) act[i] = (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
    const down = project(l, 'mlp', 'down_proj', act, I, C);
    x = new Float64Array(M * C);
    for (let i = 0; i < x.length; i++) x[i] = h[i] + down[i];
  }
  const nf = rmsnorm(x, M, C, get('model.norm.weight'), config.rmsNormEps);
  const head = config.tieWordEmbeddings ? emb : get('lm_head.weight');
  let total = 0;
  let count = 0;
  for (let b = 0; b < B; b++)
    for (let t = 0; t + 1 < T; t++) {
      const target = labels[b][t + 1];
      if (target === -100) continue;
      const m = b * T + t;
      const logits = new Float64Array(V);
      let max = -Infinity;
      for (let vv = 0; vv < V; vv++) {
        let s = 0;
        for (let c = 0; c < C; c++) s += nf[m * C + c] * head[vv * C + c];
        logits[vv] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let vv = 0; vv < V; vv++) sum += Math.exp(logits[vv] - max);
      total += max + Math.log(sum) - logits[target];
      count++;
    }
  return total / count;
}

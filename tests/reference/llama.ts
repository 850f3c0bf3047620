/**
 * float64 CPU reference of the whole Llama forward pass with LoRA (Hugging Face semantics), for
 * finite-difference checks of the GPU engine's gradients. It composes the per-op references of
 * this folder through a table of op families (`RefOps`), so a test can swap any one family for
 * another implementation, such as the GPU kernel, and see what that op alone does to the loss.
 * Written independently of the engine: it shares no code with src/ and takes only plain data.
 */
import { attentionForwardRef, type AttentionRefDims } from './attention';
import { crossEntropyRef } from './cross-entropy';
import { embeddingForwardRef } from './embedding';
import { loraForwardRef, type LoraRefDims } from './lora';
import { combineRef, matmulXWtRef } from './matmul';
import { residualForwardRef } from './residual';
import { rmsnormForwardRef } from './rmsnorm';
import { ropeRef, type RopeScalingRef, type RopeShape } from './rope';
import { swigluForwardRef } from './swiglu';

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
  /** Llama 3 RoPE scaling; absent or null for plain RoPE. */
  ropeScaling?: RopeScalingRef | null;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
}

/** Weights by Hugging Face name; adapter tensors by PEFT name. */
export type RefTensors = Map<string, Float64Array>;

type Result = Float64Array | Promise<Float64Array>;

/** One implementation per op family the model is made of; float64 in and out, possibly async (a GPU kernel and its readback). */
export interface RefOps {
  /** out [M, C] = table[ids[m]] (ids [M]). */
  embedding(ids: Uint32Array, table: Float64Array, C: number): Result;
  /** y [M, C] = x / rms(x) * w. */
  rmsnorm(x: Float64Array, w: Float64Array, M: number, C: number, eps: number): Result;
  /** y [M, N] = x [M, K] W^T (W [N, K]) + bias. */
  linear(x: Float64Array, w: Float64Array, bias: Float64Array | undefined, M: number, N: number, K: number): Result;
  /** y0 + scaling * x A^T B^T (no dropout). */
  lora(x: Float64Array, A: Float64Array, B: Float64Array, y0: Float64Array, d: LoraRefDims, scaling: number): Result;
  /** HF half-split RoPE of x [M, nHeads * headDim]. */
  rope(x: Float64Array, shape: RopeShape): Result;
  /** Causal GQA attention output [B*T, H*D]. */
  attention(q: Float64Array, k: Float64Array, v: Float64Array, d: AttentionRefDims): Result;
  /** silu(gate) * up. */
  swiglu(gate: Float64Array, up: Float64Array): Result;
  /** a + b. */
  residual(a: Float64Array, b: Float64Array): Result;
  /** Per-row loss lse - logit[target] of hidden [M, C] E^T (E [V, C]); 0 where the target is outside [0, V). */
  crossEntropy(hidden: Float64Array, E: Float64Array, targets: Int32Array, M: number, C: number, V: number): Result;
}

export type OpFamily = keyof RefOps;

/** The per-op float64 references. */
export const FLOAT64_OPS: RefOps = {
  embedding: (ids, table, C) => embeddingForwardRef(ids, table, C),
  rmsnorm: (x, w, M, C, eps) => rmsnormForwardRef(x, w, M, C, eps).y,
  linear: (x, w, bias, M, N, K) => (bias ? combineRef(matmulXWtRef(x, w, M, N, K), 1, 0, undefined, bias) : matmulXWtRef(x, w, M, N, K)),
  lora: (x, A, B, y0, d, scaling) => loraForwardRef(x, A, B, y0, d, scaling).y,
  rope: (x, shape) => ropeRef(x, shape),
  attention: (q, k, v, d) => attentionForwardRef(q, k, v, d).out,
  swiglu: (gate, up) => swigluForwardRef(gate, up),
  residual: (a, b) => residualForwardRef(a, b),
  crossEntropy: (hidden, E, targets, M, C, V) => crossEntropyRef(hidden, E, targets, M, C, V, 1).rowLoss,
};

/** Mean token loss of the batch (label of position t + 1 is the target of position t; -100 is ignored). */
export async function referenceLoss(
  config: RefConfig,
  weights: RefTensors,
  adapter: RefTensors,
  scaling: number,
  inputIds: number[][],
  labels: number[][],
  ops: RefOps = FLOAT64_OPS,
): Promise<number> {
  const { hiddenSize: C, numHeads: H, numKvHeads: KV, headDim: D, intermediateSize: I, vocabSize: V } = config;
  const B = inputIds.length;
  const T = inputIds[0].length;
  const M = B * T;
  const get = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference: missing ${name}`);
    return t;
  };
  const project = async (l: number, block: string, target: string, x: Float64Array, inF: number, outF: number, bias?: Float64Array) => {
    const y = await ops.linear(x, get(`model.layers.${l}.${block}.${target}.weight`), bias, M, outF, inF);
    const prefix = `base_model.model.model.layers.${l}.${block}.${target}`;
    const A = adapter.get(`${prefix}.lora_A.weight`);
    const Bm = adapter.get(`${prefix}.lora_B.weight`);
    if (!A || !Bm) return y;
    return ops.lora(x, A, Bm, y, { M, inFeatures: inF, outFeatures: outF, r: A.length / inF }, scaling);
  };
  const rope = (x: Float64Array, heads: number) =>
    ops.rope(x, { M, T, nHeads: heads, headDim: D, theta: config.ropeTheta, positionOffset: 0, scaling: config.ropeScaling });

  const emb = get('model.embed_tokens.weight');
  let x = await ops.embedding(Uint32Array.from(inputIds.flat()), emb, C);
  for (let l = 0; l < config.numLayers; l++) {
    const n1 = await ops.rmsnorm(x, get(`model.layers.${l}.input_layernorm.weight`), M, C, config.rmsNormEps);
    const bias = (name: string) => (config.qkvBias ? get(`model.layers.${l}.self_attn.${name}.bias`) : undefined);
    const q = await rope(await project(l, 'self_attn', 'q_proj', n1, C, H * D, bias('q_proj')), H);
    const k = await rope(await project(l, 'self_attn', 'k_proj', n1, C, KV * D, bias('k_proj')), KV);
    const v = await project(l, 'self_attn', 'v_proj', n1, C, KV * D, bias('v_proj'));
    const attn = await ops.attention(q, k, v, { B, T, H, KV, D });
    const h = await ops.residual(x, await project(l, 'self_attn', 'o_proj', attn, H * D, C));
    const n2 = await ops.rmsnorm(h, get(`model.layers.${l}.post_attention_layernorm.weight`), M, C, config.rmsNormEps);
    const gate = await project(l, 'mlp', 'gate_proj', n2, C, I);
    const up = await project(l, 'mlp', 'up_proj', n2, C, I);
    x = await ops.residual(h, await project(l, 'mlp', 'down_proj', await ops.swiglu(gate, up), I, C));
  }
  const nf = await ops.rmsnorm(x, get('model.norm.weight'), M, C, config.rmsNormEps);
  const head = config.tieWordEmbeddings ? emb : get('lm_head.weight');
  const targets = Int32Array.from({ length: M }, (_, m) => (m % T === T - 1 ? -100 : labels[Math.floor(m / T)][(m % T) + 1]));
  const rowLoss = await ops.crossEntropy(nf, head, targets, M, C, V);
  let total = 0;
  let count = 0;
  for (let m = 0; m < M; m++) {
    if (targets[m] < 0 || targets[m] >= V) continue;
    total += rowLoss[m];
    count++;
  }
  return total / count;
}

/**
 * One decoder layer of a Llama-family model, forward and backward, written llm.c style: backward is
 * the forward read in reverse. The forward records into the layer's activation set of the
 * workspace; the model calls it for each layer of the forward pass and, with recomputation, again
 * right before that layer's backward (the same kernels on the same input, so the same values).
 */
import type { Binding, Gpu } from '../gpu/context';
import { attentionBackward, attentionForward, attentionForwardCached } from '../kernels/attention';
import { loraBackward, loraDown, type LoraDropout, loraForward, loraUp } from '../kernels/lora';
import { matmulDyW, matmulXWt, matmulXWtGroups } from '../kernels/matmul';
import { residualForward } from '../kernels/residual';
import { residualRmsnormForward, rmsnormBackwardAccumulate, rmsnormForward } from '../kernels/rmsnorm';
import { ropeBackward, ropeForward } from '../kernels/rope';
import { swigluBackwardInplace, swigluForward } from '../kernels/swiglu';
import type { LoraAdapter, LoraWeights } from '../lora/adapter';
import type { LoraTarget } from '../lora/config';
import type { Batch } from '../train/batch';
import type { ModelConfig } from './config';
import type { GpuMatrix, GpuWeights } from './gpu-weights';
import type { KvCache } from './kv-cache';
import type { Workspace } from './workspace';
import { gradientBelow } from './workspace-plan';

export interface ForwardOptions {
  /** Keep what the backward pass reads and apply LoRA dropout. */
  training: boolean;
  /** Seeds this step's dropout masks (training only). */
  dropoutSeed?: number;
  /** Training: keep only each layer's input and recompute the layer's forward in backward. */
  recompute?: boolean;
}

/** What the layers of one pass share. */
export interface LayerPass {
  gpu: Gpu;
  config: ModelConfig;
  weights: GpuWeights;
  batch: Batch;
  adapter: LoraWeights | null;
  opts: ForwardOptions;
  /** Inference with a KV cache (one row): keys and values join it, positions start after it. */
  cache: KvCache | null;
  ws: Workspace;
}

/**
 * Records layer l's forward from its input stream into its activation set (`ws.layer(l)`), and the
 * residual stream after it into `out`. Without `out` (recomputation in backward) it stops once
 * every activation the layer's backward reads is written.
 */
export function recordLayerForward(p: LayerPass, l: number, out: GPUBuffer | null): void {
  const { gpu, config, batch, adapter, cache, ws } = p;
  const { B, T } = batch;
  const M = B * T;
  const C = config.hiddenSize;
  const H = config.numHeads;
  const KV = config.numKvHeads;
  const D = config.headDim;
  const I = config.intermediateSize;
  const norm = { eps: config.rmsNormEps };
  const rope = { theta: config.ropeTheta, scaling: config.ropeScaling };
  const w = p.weights.layers[l];
  const a = ws.layer(l);
  const x = ws.streamAt(l);
  rmsnormForward(gpu, { x, weight: w.inputNorm, y: a.n1, rstd: a.rstd1 }, { M, C }, norm);
  projectQkv(p, l);
  const past = cache?.length ?? 0;
  ropeForward(gpu, { x: a.q }, { M, T, nHeads: H, headDim: D, positionOffset: past }, rope);
  ropeForward(gpu, { x: a.k }, { M, T, nHeads: KV, headDim: D, positionOffset: past }, rope);
  if (cache) {
    cache.write(l, a.k, a.v, M);
    attentionForwardCached(
      gpu,
      { q: a.q, kCache: cache.keys[l], vCache: cache.values[l], out: a.attn, stats: a.stats },
      { B, T, H, KV, D, past, S: cache.capacity },
    );
  } else {
    attentionForward(gpu, { q: a.q, k: a.k, v: a.v, out: a.attn, stats: a.stats }, { B, T, H, KV, D });
  }
  project(p, l, 'o_proj', a.attn, w.o, ws.branch, H * D, C);
  residualRmsnormForward(gpu, { x, branch: ws.branch, h: a.h, weight: w.postNorm, y: a.n2, rstd: a.rstd2 }, { M, C }, norm);
  project(p, l, 'gate_proj', a.n2, w.gate, a.gate, C, I);
  project(p, l, 'up_proj', a.n2, w.up, a.up, C, I);
  // Backward reads act and down_proj's u only when down_proj has an adapter.
  if (!out && !adapter?.module(l, 'down_proj')) return;
  swigluForward(gpu, { gate: a.gate, up: a.up, out: a.act }, { n: M * I });
  project(p, l, 'down_proj', a.act, w.down, ws.branch, I, C);
  if (out) residualForward(gpu, { a: a.h, b: ws.branch, y: out }, { n: M * C });
}

/**
 * q, k, v = n1 W^T (+ bias) for W = Wq, Wk, Wv: one grouped product when the weights are stacked
 * (the narrow k/v products alone leave most of a GPU idle), else three, each with its adapter in its
 * epilogue (`project`). A grouped product has no LoRA epilogue, so the adapters' shares are added to
 * the stored q, k, v; without dropout they share their input n1, so their u = n1 A^T are one grouped
 * product too (with dropout each has its own mask, so its own input).
 */
function projectQkv(p: LayerPass, l: number): void {
  const { gpu, config, adapter } = p;
  const M = p.batch.B * p.batch.T;
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const w = p.weights.layers[l];
  const a = p.ws.layer(l);
  const projections = [
    { target: 'q_proj', w: w.q, y: a.q, bias: w.qBias, N: qDim },
    { target: 'k_proj', w: w.k, y: a.k, bias: w.kBias, N: kvDim },
    { target: 'v_proj', w: w.v, y: a.v, bias: w.vBias, N: kvDim },
  ] as const;
  if (!w.qkvStacked) {
    for (const t of projections) project(p, l, t.target, a.n1, t.w, t.y, C, t.N, t.bias);
    return;
  }
  const groups = projections.map((t) => ({ W: t.w.buffer, Y: t.y, bias: t.bias, N: t.N }));
  matmulXWtGroups(gpu, { X: a.n1, groups }, { M, K: C }, { format: w.q.format });
  if (!adapter) return;
  const adapted = projections.flatMap((t) => {
    const module = adapter.module(l, t.target);
    return module ? [{ ...t, module, u: a.loraU.get(t.target)! }] : [];
  });
  if (adapted.length < 2 || adapted.some((t) => dropoutFor(adapter, l, t.target, p.opts))) {
    for (const t of adapted) adaptStored(p, l, t.target, a.n1, t.y, C, t.N);
    return;
  }
  matmulXWtGroups(
    gpu,
    { X: a.n1, groups: adapted.map((t) => ({ W: adapter.view(t.module, 'A'), Y: t.u, N: adapter.layout.r })) },
    { M, K: C },
  );
  for (const t of adapted) {
    loraUp(
      gpu,
      { u: t.u, B: adapter.view(t.module, 'B'), y: t.y },
      { M, outFeatures: t.N, r: adapter.layout.r },
      { scaling: adapter.scaling },
    );
  }
}

/**
 * y = x W^T (+ bias) (+ the adapter's share s * drop(x) A^T B^T when `target` has one). With an
 * adapter, u = drop(x) A^T goes first (kept in the workspace's loraU, which the backward pass and the
 * recomputed forward read) and the base product adds s * u B^T in its epilogue, so y is written once;
 * every schedule and weight format takes the epilogue.
 */
function project(
  p: LayerPass,
  layer: number,
  target: LoraTarget,
  x: Binding,
  w: GpuMatrix,
  y: Binding,
  inF: number,
  outF: number,
  bias?: Binding,
): void {
  const { gpu, adapter, ws } = p;
  const M = p.batch.B * p.batch.T;
  const module = adapter?.module(layer, target);
  if (!adapter || !module) {
    matmulXWt(gpu, { X: x, W: w.buffer, Y: y, bias }, { M, N: outF, K: inF }, { format: w.format });
    return;
  }
  const act = ws.layer(layer);
  const u = act.loraU.get(target)!;
  const r = adapter.layout.r;
  const dropout = dropoutFor(adapter, layer, target, p.opts);
  loraDown(gpu, { x, xDrop: act.loraXDrop.get(target), A: adapter.view(module, 'A'), u }, { M, inFeatures: inF, r }, { dropout });
  const lora = { u, B: adapter.view(module, 'B'), r, scaling: adapter.scaling };
  matmulXWt(gpu, { X: x, W: w.buffer, Y: y, bias }, { M, N: outF, K: inF }, { format: w.format, lora });
}

/** y += s * drop(x) A^T B^T into a y already stored (by a grouped product), when `target` has an adapter. */
function adaptStored(p: LayerPass, layer: number, target: LoraTarget, x: Binding, y: Binding, inF: number, outF: number): void {
  const { gpu, adapter, ws } = p;
  const module = adapter?.module(layer, target);
  if (!adapter || !module) return;
  const act = ws.layer(layer);
  loraForward(
    gpu,
    {
      x,
      xDrop: act.loraXDrop.get(target),
      A: adapter.view(module, 'A'),
      B: adapter.view(module, 'B'),
      u: act.loraU.get(target)!,
      y,
    },
    { M: p.batch.B * p.batch.T, inFeatures: inF, outFeatures: outF, r: adapter.layout.r },
    { scaling: adapter.scaling, dropout: dropoutFor(adapter, layer, target, p.opts) },
  );
}

/**
 * Layer l's backward, reading exactly what `backwardReads` (workspace-plan.ts) lists. Below the
 * first adapter nothing needs a gradient, so the first layer skips the input gradients there.
 */
export function recordLayerBackward(p: LayerPass, adapter: LoraAdapter, l: number): void {
  const { gpu, config, batch, ws } = p;
  const { B, T } = batch;
  const M = B * T;
  const C = config.hiddenSize;
  const H = config.numHeads;
  const KV = config.numKvHeads;
  const D = config.headDim;
  const I = config.intermediateSize;
  const rope = { theta: config.ropeTheta, scaling: config.ropeScaling };
  const w = p.weights.layers[l];
  const a = ws.layer(l);
  const below = (slot: number) => gradientBelow(adapter.config.targets, l, slot);
  const back = (target: LoraTarget, dy: Binding, x: Binding, wt: GpuMatrix, dx: GPUBuffer, inF: number, outF: number, slot: number) =>
    projectBackward(p, adapter, l, target, dy, x, wt, below(slot) ? dx : null, inF, outF);

  // MLP branch: y = h + down(silu(gate(n2)) * up(n2)), n2 = rms(h).
  back('down_proj', ws.dStream, a.act, w.down, ws.dAct, I, C, 3);
  // In place: gate and up now hold their gradients, which gate_proj's and up_proj's backward read.
  if (below(3)) swigluBackwardInplace(gpu, { dout: ws.dAct, gate: a.gate, up: a.up }, { n: M * I });
  back('gate_proj', a.gate, a.n2, w.gate, ws.dNorm, C, I, 2);
  back('up_proj', a.up, a.n2, w.up, ws.dNorm, C, I, 2);
  if (below(2)) {
    rmsnormBackwardAccumulate(gpu, { dy: ws.dNorm, x: a.h, weight: w.postNorm, rstd: a.rstd2, dx: ws.dStream }, { M, C });
  }
  // Attention branch: h = x + o(attn(rope(q(n1)), rope(k(n1)), v(n1))), n1 = rms(x).
  back('o_proj', ws.dStream, a.attn, w.o, ws.dAttn, H * D, C, 1);
  if (below(1)) {
    attentionBackward(
      gpu,
      { dout: ws.dAttn, q: a.q, k: a.k, v: a.v, out: a.attn, stats: a.stats, dq: ws.dq, dk: ws.dk, dv: ws.dv },
      { B, T, H, KV, D },
    );
    ropeBackward(gpu, { dx: ws.dq }, { M, T, nHeads: H, headDim: D }, rope);
    ropeBackward(gpu, { dx: ws.dk }, { M, T, nHeads: KV, headDim: D }, rope);
  }
  back('q_proj', ws.dq, a.n1, w.q, ws.dNorm, C, H * D, 0);
  back('k_proj', ws.dk, a.n1, w.k, ws.dNorm, C, KV * D, 0);
  back('v_proj', ws.dv, a.n1, w.v, ws.dNorm, C, KV * D, 0);
  if (below(0)) {
    rmsnormBackwardAccumulate(gpu, { dy: ws.dNorm, x: ws.streamAt(l), weight: w.inputNorm, rstd: a.rstd1, dx: ws.dStream }, { M, C });
  }
}

/**
 * dX = dY W through the frozen weight into `dx` (null: nothing below needs it), then the adapter's
 * dA, dB and its share of dX. Of the projections that share one dx (q/k/v, gate/up) the first
 * overwrites it and the others add to it.
 */
function projectBackward(
  p: LayerPass,
  adapter: LoraAdapter,
  layer: number,
  target: LoraTarget,
  dy: Binding,
  x: Binding,
  w: GpuMatrix,
  dx: GPUBuffer | null,
  inF: number,
  outF: number,
): void {
  const { gpu, ws } = p;
  const M = p.batch.B * p.batch.T;
  const accumulate = target === 'k_proj' || target === 'v_proj' || target === 'up_proj';
  if (dx) matmulDyW(gpu, { dY: dy, W: w.buffer, dX: dx }, { M, N: outF, K: inF }, { beta: accumulate ? 1 : 0, format: w.format });
  const module = adapter.module(layer, target);
  if (!module) return;
  const act = ws.layer(layer);
  loraBackward(
    gpu,
    {
      dy,
      x,
      xDrop: act.loraXDrop.get(target),
      u: act.loraU.get(target)!,
      A: adapter.view(module, 'A'),
      B: adapter.view(module, 'B'),
      dA: adapter.gradView(module, 'A'),
      dB: adapter.gradView(module, 'B'),
      du: ws.dU,
      dx: dx ?? undefined,
      dxScratch: dx && act.loraXDrop.size ? ws.dxScratch : undefined,
    },
    { M, inFeatures: inF, outFeatures: outF, r: adapter.layout.r },
    { scaling: adapter.scaling, accumulate: true, dropout: dropoutFor(adapter, layer, target, p.opts) },
  );
}

function dropoutFor(adapter: LoraWeights, layer: number, target: LoraTarget, opts: ForwardOptions): LoraDropout | undefined {
  if (!opts.training || adapter.config.dropout <= 0) return undefined;
  const moduleIndex = layer * 8 + adapter.config.targets.indexOf(target);
  return { p: adapter.config.dropout, seed: mixSeed(opts.dropoutSeed ?? 0, moduleIndex) };
}

/** Distinct, well-spread dropout seeds per module and step. */
function mixSeed(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

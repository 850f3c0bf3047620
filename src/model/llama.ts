import type { Binding, Gpu } from '../gpu/context';
import { attentionBackward, attentionForward, attentionForwardCached } from '../kernels/attention';
import { crossEntropyForwardBackward, logitsForRows } from '../kernels/cross-entropy';
import { embeddingForward } from '../kernels/embedding';
import { loraBackward, loraForward, type LoraDropout } from '../kernels/lora';
import { matmulDyW, matmulXWt } from '../kernels/matmul';
import { residualForward } from '../kernels/residual';
import { rmsnormBackwardAccumulate, rmsnormForward } from '../kernels/rmsnorm';
import { ropeBackward, ropeForward } from '../kernels/rope';
import { swigluBackward, swigluForward } from '../kernels/swiglu';
import type { LoraAdapter, LoraWeights } from '../lora/adapter';
import type { LoraTarget } from '../lora/config';
import { type Batch, makeBatch } from '../train/batch';
import type { ModelConfig } from './config';
import { destroyWeights, type GpuMatrix, type GpuWeights, type UploadOptions, uploadWeights } from './gpu-weights';
import { KvCache, KvCacheError } from './kv-cache';
import type { WeightFormat } from './weight-format';
import type { ModelWeightsSource } from './weights';
import { Workspace } from './workspace';
import { planCovers, planWorkspace } from './workspace-plan';

export interface ForwardOptions {
  /** Keep every layer's activations for a backward pass and apply LoRA dropout. */
  training: boolean;
  /** Seeds this step's dropout masks (training only). */
  dropoutSeed?: number;
}

/**
 * A Llama-family decoder (Llama, SmolLM2, TinyLlama, Qwen2) on the GPU with optional LoRA
 * adapters. Forward and backward are written llm.c style: backward is the forward read in reverse.
 */
export class LlamaModel {
  private workspace: Workspace | null = null;

  constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly weights: GpuWeights,
  ) {}

  /** Uploads the weights; `options.precision` says how the weight matrices are stored (default 'auto': as in the checkpoint). */
  static async load(gpu: Gpu, source: ModelWeightsSource, options: UploadOptions = {}): Promise<LlamaModel> {
    return new LlamaModel(gpu, source.config, await uploadWeights(gpu, source.config, source, options));
  }

  /** How the frozen weight matrices are stored on the GPU ('mixed' when the checkpoint mixes dtypes and 'auto' kept them). */
  get precision(): WeightFormat | 'mixed' {
    return this.weights.precision;
  }

  /** Bytes held by activations for the most recent batch shape. */
  get workspaceBytes(): number {
    return this.workspace?.bytes ?? 0;
  }

  /**
   * Records the forward pass and the loss of `batch` for evaluation: no dropout, no gradients. Row
   * losses land in the workspace; read them with `readLossSum` or `readRowLossSums`.
   */
  loss(batch: Batch, adapter: LoraWeights | null): void {
    this.forwardAndLoss(batch, adapter, null);
  }

  /**
   * Records a training step's share of work for `batch`: the forward pass with LoRA dropout (masks
   * seeded by `dropoutSeed`, default 0), the loss, and the backward pass that adds
   * d(sum of token losses * lossScale)/d(adapter) into `adapter.grads`. Row losses as for `loss`.
   */
  lossAndGradients(batch: Batch, adapter: LoraAdapter, { lossScale, dropoutSeed = 0 }: { lossScale: number; dropoutSeed?: number }): void {
    this.forwardAndLoss(batch, adapter, { lossScale, dropoutSeed });
    this.backward(batch, adapter, dropoutSeed);
  }

  /** Training when `training` is given: dropout on, and d(loss)/d(final norm output) left in the workspace's dNorm. */
  private forwardAndLoss(batch: Batch, adapter: LoraWeights | null, training: { lossScale: number; dropoutSeed: number } | null): void {
    const ws = this.forward(batch, adapter, { training: training !== null, dropoutSeed: training?.dropoutSeed });
    crossEntropyForwardBackward(
      this.gpu,
      {
        hidden: ws.nFinal,
        targets: ws.targets,
        rowLoss: ws.rowLoss,
        dHidden: training ? ws.dNorm : undefined,
        scratch: ws.ceScratch,
        stats: ws.ceStats,
        lmHead: this.weights.lmHead.pieces,
      },
      { M: batch.B * batch.T, C: this.config.hiddenSize, V: this.config.vocabSize, chunk: ws.ceChunk },
      { ...(training && { lossScale: training.lossScale }), format: this.weights.lmHead.format },
    );
  }

  /** Sum of the per-token losses of the last `loss` or `lossAndGradients` batch (ignored positions are 0). */
  async readLossSum(batch: Batch): Promise<number> {
    return (await this.readRowLossSums(batch)).reduce((a, b) => a + b, 0);
  }

  /** Per-row sums of the token losses of the last `loss` or `lossAndGradients` batch: [B]. */
  async readRowLossSums(batch: Batch): Promise<Float64Array> {
    const losses = await this.gpu.readF32(this.workspace!.rowLoss, batch.B * batch.T);
    const sums = new Float64Array(batch.B);
    for (let i = 0; i < losses.length; i++) sums[Math.floor(i / batch.T)] += losses[i];
    return sums;
  }

  /** An empty KV cache for one sequence of up to `capacity` positions. */
  createKvCache(capacity: number): KvCache {
    return new KvCache(this.gpu, this.config, capacity);
  }

  /**
   * Runs `ids`, the next tokens of the cached sequence, at positions [cache.length, cache.length +
   * ids.length): their keys and values join the cache and they attend to everything before them.
   * Returns the logits of the last of them [vocab]. Prefill is one call with the whole prompt.
   */
  async forwardCached(cache: KvCache, ids: number[], adapter: LoraWeights | null): Promise<Float32Array> {
    if (cache.length + ids.length > cache.capacity) {
      throw new KvCacheError(
        `the KV cache holds ${cache.capacity} positions; ${cache.length} are used and ${ids.length} more do not fit: create a larger cache`,
      );
    }
    const batch = makeBatch([ids]);
    const ws = this.forward(batch, adapter, { training: false }, cache);
    cache.length += ids.length;
    const V = this.config.vocabSize;
    logitsForRows(
      this.gpu,
      { hidden: ws.nFinal, lmHead: this.weights.lmHead.pieces, out: cache.logits },
      { rowStart: ids.length - 1, rows: 1, C: this.config.hiddenSize, V },
      { format: this.weights.lmHead.format },
    );
    return this.gpu.readF32(cache.logits, V);
  }

  /** Logits of the last position of each row: [B, vocab]. */
  async lastPositionLogits(batch: Batch, adapter: LoraWeights | null): Promise<Float32Array> {
    const ws = this.forward(batch, adapter, { training: false });
    const V = this.config.vocabSize;
    const out = this.gpu.createBuffer(batch.B * V * 4, 'logits');
    for (let b = 0; b < batch.B; b++) {
      logitsForRows(
        this.gpu,
        { hidden: ws.nFinal, lmHead: this.weights.lmHead.pieces, out: { buffer: out, offset: b * V * 4, size: V * 4 } },
        { rowStart: b * batch.T + batch.T - 1, rows: 1, C: this.config.hiddenSize, V },
        { format: this.weights.lmHead.format },
      );
    }
    const logits = await this.gpu.readF32(out, batch.B * V);
    out.destroy();
    return logits;
  }

  private ensureWorkspace(M: number, training: boolean, adapter: LoraWeights | null): Workspace {
    const need = planWorkspace(
      this.config,
      M,
      training,
      adapter ? { r: adapter.layout.r, targets: adapter.config.targets, dropout: adapter.config.dropout } : null,
    );
    // A training workspace holds everything inference needs, so evaluation between training steps
    // reuses it instead of reallocating twice per evaluation.
    if (this.workspace && planCovers(this.workspace.plan, need)) return this.workspace;
    this.workspace?.destroy();
    this.workspace = new Workspace(this.gpu, need);
    return this.workspace;
  }

  /** Frees the activation workspace; the next pass allocates it again. */
  releaseWorkspace(): void {
    this.workspace?.destroy();
    this.workspace = null;
  }

  /** Frees every GPU buffer of the model: its weights and its workspace. The model is unusable afterwards. */
  destroy(): void {
    this.releaseWorkspace();
    destroyWeights(this.weights);
  }

  /** With a cache (one row), the batch holds the tokens after the cache's `length` positions. */
  private forward(batch: Batch, adapter: LoraWeights | null, opts: ForwardOptions, cache: KvCache | null = null): Workspace {
    const { gpu, config, weights } = this;
    const { B, T } = batch;
    const M = B * T;
    const C = config.hiddenSize;
    const H = config.numHeads;
    const KV = config.numKvHeads;
    const D = config.headDim;
    const I = config.intermediateSize;
    const norm = { eps: config.rmsNormEps };
    const rope = { theta: config.ropeTheta, scaling: config.ropeScaling };
    const ws = this.ensureWorkspace(M, opts.training, adapter);
    gpu.write(ws.ids, batch.ids);
    gpu.write(ws.targets, batch.targets);

    for (const piece of weights.embedding.pieces) {
      embeddingForward(
        gpu,
        { ids: ws.ids, table: piece.weight, out: ws.streamAt(0) },
        { M, C, rowStart: piece.rowStart, rowCount: piece.rows },
        { format: weights.embedding.format },
      );
    }

    const project = (
      layer: number,
      target: LoraTarget,
      x: GPUBuffer,
      w: GpuMatrix,
      y: GPUBuffer,
      inF: number,
      outF: number,
      bias?: GPUBuffer,
    ) => {
      matmulXWt(gpu, { X: x, W: w.buffer, Y: y, bias }, { M, N: outF, K: inF }, { format: w.format });
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
        { M, inFeatures: inF, outFeatures: outF, r: adapter.layout.r },
        { scaling: adapter.scaling, dropout: this.dropoutFor(adapter, layer, target, opts) },
      );
    };

    for (let l = 0; l < config.numLayers; l++) {
      const w = weights.layers[l];
      const a = ws.layer(l);
      const x = ws.streamAt(l);
      rmsnormForward(gpu, { x, weight: w.inputNorm, y: a.n1, rstd: a.rstd1 }, { M, C }, norm);
      project(l, 'q_proj', a.n1, w.q, a.q, C, H * D, w.qBias);
      project(l, 'k_proj', a.n1, w.k, a.k, C, KV * D, w.kBias);
      project(l, 'v_proj', a.n1, w.v, a.v, C, KV * D, w.vBias);
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
      project(l, 'o_proj', a.attn, w.o, ws.branch, H * D, C);
      residualForward(gpu, { a: x, b: ws.branch, y: a.h }, { n: M * C });
      rmsnormForward(gpu, { x: a.h, weight: w.postNorm, y: a.n2, rstd: a.rstd2 }, { M, C }, norm);
      project(l, 'gate_proj', a.n2, w.gate, a.gate, C, I);
      project(l, 'up_proj', a.n2, w.up, a.up, C, I);
      swigluForward(gpu, { gate: a.gate, up: a.up, out: a.act }, { n: M * I });
      project(l, 'down_proj', a.act, w.down, ws.branch, I, C);
      residualForward(gpu, { a: a.h, b: ws.branch, y: ws.streamAt(l + 1) }, { n: M * C });
    }
    rmsnormForward(gpu, { x: ws.streamAt(config.numLayers), weight: weights.finalNorm, y: ws.nFinal, rstd: ws.rstdFinal }, { M, C }, norm);
    return ws;
  }

  /** Expects `ws.dNorm` to hold d(loss)/d(final norm output). */
  private backward(batch: Batch, adapter: LoraAdapter, dropoutSeed: number): void {
    const { gpu, config, weights } = this;
    const ws = this.workspace!;
    const { B, T } = batch;
    const M = B * T;
    const C = config.hiddenSize;
    const H = config.numHeads;
    const KV = config.numKvHeads;
    const D = config.headDim;
    const I = config.intermediateSize;
    const opts: ForwardOptions = { training: true, dropoutSeed };
    const rope = { theta: config.ropeTheta, scaling: config.ropeScaling };

    // dStream carries d(loss)/d(residual stream) downwards through the layers.
    gpu.clear(ws.dStream);
    rmsnormBackwardAccumulate(
      gpu,
      { dy: ws.dNorm, x: ws.streamAt(config.numLayers), weight: weights.finalNorm, rstd: ws.rstdFinal, dx: ws.dStream },
      { M, C },
    );

    // dX = dY W through the frozen weight, then the adapter's dA, dB and its share of dX.
    const projectBackward = (
      layer: number,
      target: LoraTarget,
      dy: Binding,
      x: GPUBuffer,
      w: GpuMatrix,
      dx: GPUBuffer,
      inF: number,
      outF: number,
      accumulate: boolean,
    ) => {
      matmulDyW(gpu, { dY: dy, W: w.buffer, dX: dx }, { M, N: outF, K: inF }, { beta: accumulate ? 1 : 0, format: w.format });
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
          dx,
          dxScratch: act.loraXDrop.size ? ws.dxScratch : undefined,
        },
        { M, inFeatures: inF, outFeatures: outF, r: adapter.layout.r },
        { scaling: adapter.scaling, accumulate: true, dropout: this.dropoutFor(adapter, layer, target, opts) },
      );
    };

    for (let l = config.numLayers - 1; l >= 0; l--) {
      const w = weights.layers[l];
      const a = ws.layer(l);
      // MLP branch: y = h + down(silu(gate(n2)) * up(n2)), n2 = rms(h).
      projectBackward(l, 'down_proj', ws.dStream, a.act, w.down, ws.dAct, I, C, false);
      swigluBackward(gpu, { dout: ws.dAct, gate: a.gate, up: a.up, dgate: ws.dGate, dup: ws.dUp }, { n: M * I });
      projectBackward(l, 'gate_proj', ws.dGate, a.n2, w.gate, ws.dNorm, C, I, false);
      projectBackward(l, 'up_proj', ws.dUp, a.n2, w.up, ws.dNorm, C, I, true);
      rmsnormBackwardAccumulate(gpu, { dy: ws.dNorm, x: a.h, weight: w.postNorm, rstd: a.rstd2, dx: ws.dStream }, { M, C });
      // Attention branch: h = x + o(attn(rope(q(n1)), rope(k(n1)), v(n1))), n1 = rms(x).
      projectBackward(l, 'o_proj', ws.dStream, a.attn, w.o, ws.dAttn, H * D, C, false);
      attentionBackward(
        gpu,
        { dout: ws.dAttn, q: a.q, k: a.k, v: a.v, out: a.attn, stats: a.stats, dq: ws.dq, dk: ws.dk, dv: ws.dv },
        { B, T, H, KV, D },
      );
      ropeBackward(gpu, { dx: ws.dq }, { M, T, nHeads: H, headDim: D }, rope);
      ropeBackward(gpu, { dx: ws.dk }, { M, T, nHeads: KV, headDim: D }, rope);
      projectBackward(l, 'q_proj', ws.dq, a.n1, w.q, ws.dNorm, C, H * D, false);
      projectBackward(l, 'k_proj', ws.dk, a.n1, w.k, ws.dNorm, C, KV * D, true);
      projectBackward(l, 'v_proj', ws.dv, a.n1, w.v, ws.dNorm, C, KV * D, true);
      rmsnormBackwardAccumulate(gpu, { dy: ws.dNorm, x: ws.streamAt(l), weight: w.inputNorm, rstd: a.rstd1, dx: ws.dStream }, { M, C });
    }
  }

  private dropoutFor(adapter: LoraWeights, layer: number, target: LoraTarget, opts: ForwardOptions): LoraDropout | undefined {
    if (!opts.training || adapter.config.dropout <= 0) return undefined;
    const moduleIndex = layer * 8 + adapter.config.targets.indexOf(target);
    return { p: adapter.config.dropout, seed: mixSeed(opts.dropoutSeed ?? 0, moduleIndex) };
  }
}

/** Distinct, well-spread dropout seeds per module and step. */
function mixSeed(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

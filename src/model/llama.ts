import type { Gpu } from '../gpu/context';
import { crossEntropyForwardBackward, logitsForRows } from '../kernels/cross-entropy';
import { embeddingForward } from '../kernels/embedding';
import { rmsnormBackwardAccumulate, rmsnormForward } from '../kernels/rmsnorm';
import type { LoraAdapter, LoraWeights } from '../lora/adapter';
import { type Batch, makeBatch } from '../train/batch';
import type { ModelConfig } from './config';
import { type ForwardOptions, type LayerPass, recordLayerBackward, recordLayerForward } from './decoder-layer';
import { destroyWeights, type GpuWeights, type UploadOptions, uploadWeights } from './gpu-weights';
import { KvCache, KvCacheError } from './kv-cache';
import type { WeightFormat } from './weight-format';
import type { ModelWeightsSource } from './weights';
import { Workspace } from './workspace';
import { type PassKind, planCovers, planWorkspace } from './workspace-plan';

export type { ForwardOptions };

export interface GradientOptions {
  /** Scales the summed token losses: 1 / (targets in the whole optimizer step). */
  lossScale: number;
  /** Seeds this step's dropout masks (default 0); the recomputed forward uses the same masks. */
  dropoutSeed?: number;
  /** Activation recomputation (default off): the same gradients from far less activation memory. */
  recompute?: boolean;
  /** Called between the recorded forward and the loss with the workspace (tests poison what the rest must not read). */
  afterForward?: (workspace: Workspace) => void;
  /** Called between the recorded loss and backward with the workspace (tests poison what backward must not read). */
  beforeBackward?: (workspace: Workspace) => void;
}

/**
 * A Llama-family decoder (Llama, SmolLM2, TinyLlama, Qwen2) on the GPU with optional LoRA
 * adapters. Forward and backward are written llm.c style: backward is the forward read in reverse.
 */
export class LlamaModel {
  private workspace: Workspace | null = null;
  /**
   * Whether workspaces share storage between buffers whose lifetimes never overlap (default;
   * src/model/workspace-slots.ts). Off, every buffer has its own: the same values bit for bit, the
   * reference the aliasing tests compare against. Takes effect with the next workspace.
   */
  workspaceAliasing = true;

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
    this.forwardAndLoss(batch, adapter, { training: false });
  }

  /**
   * Records a training step's share of work for `batch`: the forward pass with LoRA dropout (masks
   * seeded by `dropoutSeed`, default 0), the loss, and the backward pass that adds
   * d(sum of token losses * lossScale)/d(adapter) into `adapter.grads`. Row losses as for `loss`.
   * With `recompute` the gradients are the same bit for bit (see workspace-plan.ts).
   */
  lossAndGradients(batch: Batch, adapter: LoraAdapter, options: GradientOptions): void {
    const opts: ForwardOptions = { training: true, dropoutSeed: options.dropoutSeed ?? 0, recompute: options.recompute ?? false };
    this.forwardAndLoss(batch, adapter, opts, options.lossScale, options.afterForward);
    options.beforeBackward?.(this.workspace!);
    this.backward(batch, adapter, opts);
  }

  /** Training when `opts.training`: dropout on, and d(loss * lossScale)/d(final norm output) left in the workspace's dNorm. */
  private forwardAndLoss(
    batch: Batch,
    adapter: LoraWeights | null,
    opts: ForwardOptions,
    lossScale = 1,
    afterForward?: (workspace: Workspace) => void,
  ): void {
    const ws = this.forward(batch, adapter, opts);
    afterForward?.(ws);
    const training = opts.training;
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
      { ...(training ? { lossScale } : {}), format: this.weights.lmHead.format },
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

  private ensureWorkspace(M: number, pass: PassKind, adapter: LoraWeights | null): Workspace {
    const need = planWorkspace(
      this.config,
      M,
      pass,
      adapter ? { r: adapter.layout.r, targets: adapter.config.targets, dropout: adapter.config.dropout } : null,
      { aliasing: this.workspaceAliasing },
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
    const M = batch.B * batch.T;
    const C = config.hiddenSize;
    const pass: PassKind = !opts.training ? 'inference' : opts.recompute ? 'train-recompute' : 'train';
    const ws = this.ensureWorkspace(M, pass, adapter);
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
    const p: LayerPass = { gpu, config, weights, batch, adapter, opts, cache, ws };
    for (let l = 0; l < config.numLayers; l++) recordLayerForward(p, l, ws.streamAt(l + 1));
    rmsnormForward(
      gpu,
      { x: ws.streamAt(config.numLayers), weight: weights.finalNorm, y: ws.nFinal, rstd: ws.rstdFinal },
      { M, C },
      { eps: config.rmsNormEps },
    );
    return ws;
  }

  /**
   * Expects `ws.dNorm` to hold d(loss)/d(final norm output). With recomputation, each layer's forward
   * is recorded again into the scratch set right before its backward; the last layer's activations
   * are still there from the forward pass.
   */
  private backward(batch: Batch, adapter: LoraAdapter, opts: ForwardOptions): void {
    const { gpu, config, weights } = this;
    const ws = this.workspace!;
    const M = batch.B * batch.T;
    const C = config.hiddenSize;

    // dStream carries d(loss)/d(residual stream) downwards through the layers.
    gpu.clear(ws.dStream);
    rmsnormBackwardAccumulate(
      gpu,
      { dy: ws.dNorm, x: ws.streamAt(config.numLayers), weight: weights.finalNorm, rstd: ws.rstdFinal, dx: ws.dStream },
      { M, C },
    );
    const p: LayerPass = { gpu, config, weights, batch, adapter, opts, cache: null, ws };
    for (let l = config.numLayers - 1; l >= 0; l--) {
      if (opts.recompute && l < config.numLayers - 1) recordLayerForward(p, l, null);
      recordLayerBackward(p, adapter, l);
    }
  }
}

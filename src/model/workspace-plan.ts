/**
 * Every activation and scratch buffer of a forward (and backward) pass, declared once by name and
 * size. `Workspace` allocates exactly this plan and the memory estimate adds it up, so the page's
 * figure and the real allocation cannot drift apart.
 */
import { allocatedSize } from '../gpu/context';
import { crossEntropyChunkRows } from '../kernels/cross-entropy';
import type { LoraTarget } from '../lora/config';
import type { ModelConfig } from './config';

/** Budget for the [tokens, vocab chunk] logits scratch of the fused cross-entropy. */
export const CE_SCRATCH_BYTES = 32 * 1024 * 1024;

/** What one layer's forward saves for its backward (floats for M tokens). */
export const LAYER_BUFFERS = ['rstd1', 'n1', 'q', 'k', 'v', 'attn', 'stats', 'h', 'rstd2', 'n2', 'gate', 'up', 'act'] as const;
export type LayerBufferName = (typeof LAYER_BUFFERS)[number];

/** Buffers the whole pass shares: final norm, loss, and the backward's scratch. */
export const SHARED_BUFFERS = [
  'branch',
  'rstdFinal',
  'nFinal',
  'ids',
  'targets',
  'rowLoss',
  'ceStats',
  'ceScratch',
  'dStream',
  'dNorm',
  'dq',
  'dk',
  'dv',
  'dAttn',
  'dGate',
  'dUp',
  'dAct',
  'dU',
  'dxScratch',
] as const;
export type SharedBufferName = (typeof SHARED_BUFFERS)[number];

/** The adapter shape a workspace must serve: rank, adapted projections, and whether dropout is on. */
export interface WorkspaceLora {
  r: number;
  targets: readonly LoraTarget[];
  dropout: number;
}

export interface WorkspacePlan {
  /** Tokens per pass it holds (batch x sequence length). */
  capacity: number;
  /** Training keeps every layer's activations for the backward; inference reuses one set. */
  training: boolean;
  /** Vocabulary rows per cross-entropy chunk. */
  ceChunk: number;
  /** Layers whose activations are stored: all of them when training, one otherwise. */
  layerCount: number;
  layer: Record<LayerBufferName, number>;
  /** Per stored layer, per adapted projection: u = drop(x) A^T, and drop(x) when dropout is on. */
  lora: { target: LoraTarget; u: number; xDrop: number }[];
  /** Residual streams: before each layer and after the last when training, two alternating otherwise. */
  streamCount: number;
  stream: number;
  shared: Record<SharedBufferName, number>;
}

export function ceChunkRows(config: ModelConfig, M: number): number {
  return Math.min(crossEntropyChunkRows(M, CE_SCRATCH_BYTES), config.vocabSize);
}

export function planWorkspace(config: ModelConfig, M: number, training: boolean, lora: WorkspaceLora | null): WorkspacePlan {
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  const inFeatures: Record<LoraTarget, number> = {
    q_proj: C,
    k_proj: C,
    v_proj: C,
    o_proj: qDim,
    gate_proj: C,
    up_proj: C,
    down_proj: I,
  };
  const dropout = training && lora !== null && lora.dropout > 0;
  const ceChunk = ceChunkRows(config, M);
  // Backward scratch exists only for training; inference keeps a one-float placeholder so every field is a buffer.
  const small = training ? M : 1;
  return {
    capacity: M,
    training,
    ceChunk,
    layerCount: training ? config.numLayers : 1,
    layer: {
      rstd1: M,
      n1: M * C,
      q: M * qDim,
      k: M * kvDim,
      v: M * kvDim,
      attn: M * qDim,
      stats: 2 * M * config.numHeads,
      h: M * C,
      rstd2: M,
      n2: M * C,
      gate: M * I,
      up: M * I,
      act: M * I,
    },
    lora: (lora?.targets ?? []).map((target) => ({ target, u: M * lora!.r, xDrop: dropout ? M * inFeatures[target] : 0 })),
    streamCount: training ? config.numLayers + 1 : 2,
    stream: M * C,
    shared: {
      branch: M * C,
      rstdFinal: M,
      nFinal: M * C,
      ids: M,
      targets: M,
      rowLoss: M,
      ceStats: M * 4,
      ceScratch: M * ceChunk,
      dStream: small * C,
      dNorm: small * C,
      dq: small * qDim,
      dk: small * kvDim,
      dv: small * kvDim,
      dAttn: small * qDim,
      dGate: small * I,
      dUp: small * I,
      dAct: small * I,
      dU: small * (lora?.r ?? 1),
      dxScratch: dropout ? M * Math.max(C, qDim, I) : 1,
    },
  };
}

/** The byte size of every buffer the plan allocates, as the GPU allocates them. */
export function planBufferSizes(plan: WorkspacePlan): number[] {
  const sizes: number[] = [];
  const add = (floats: number) => sizes.push(allocatedSize(floats * 4));
  for (let l = 0; l < plan.layerCount; l++) {
    for (const module of plan.lora) {
      add(module.u);
      if (module.xDrop > 0) add(module.xDrop);
    }
    for (const name of LAYER_BUFFERS) add(plan.layer[name]);
  }
  for (let i = 0; i < plan.streamCount; i++) add(plan.stream);
  for (const name of SHARED_BUFFERS) add(plan.shared[name]);
  return sizes;
}

/** True when a workspace allocated for `have` can run a pass that needs `need`. */
export function planCovers(have: WorkspacePlan, need: WorkspacePlan): boolean {
  if (have.capacity < need.capacity || (need.training && !have.training)) return false;
  if (have.layerCount < need.layerCount || have.streamCount < need.streamCount || have.stream < need.stream) return false;
  if (LAYER_BUFFERS.some((name) => have.layer[name] < need.layer[name])) return false;
  // A pass runs with the workspace's own chunk, which a larger capacity only makes smaller.
  if (SHARED_BUFFERS.some((name) => name !== 'ceScratch' && have.shared[name] < need.shared[name])) return false;
  return need.lora.every((n) => {
    const h = have.lora.find((m) => m.target === n.target);
    return h !== undefined && h.u >= n.u && h.xDrop >= n.xDrop;
  });
}

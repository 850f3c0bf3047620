/**
 * Every activation and scratch buffer of a forward (and backward) pass, declared once by name and
 * size. `Workspace` allocates exactly this plan and the memory estimate adds it up, so the page's
 * figure and the real allocation cannot drift apart.
 *
 * A layer's forward writes the LAYER_BUFFERS (and, per adapted projection, `u` and with dropout
 * `xDrop`). Training keeps for each layer only the buffers its backward reads (`backwardReads`);
 * everything else a layer writes lives once, in a scratch set that every layer overwrites. With
 * recomputation nothing but each layer's input stream is kept: backward runs the layer's forward
 * again into the scratch set (the same kernels on the same input, so the same values bit for bit).
 * The buffers allocated once (the scratch set, the scratch streams, the shared buffers) share
 * storage where their lifetimes never overlap (workspace-slots.ts): in training, the forward's
 * scratch, the loss's and the backward's scratch take the same slots.
 */
import { allocatedSize } from '../gpu/context';
import { crossEntropyChunkRows } from '../kernels/cross-entropy';
import type { LoraTarget } from '../lora/config';
import type { ModelConfig } from './config';
import { loraULayout, qkvLayout, uKey } from './workspace-ranges';
import { assignSlots, disjoint, lifetime, type SingleName, type Slot, slotsSafeFor } from './workspace-slots';

/**
 * Bounds of the [tokens, vocab chunk] logits scratch of the fused cross-entropy. Within them it
 * takes the size of the largest buffer it can share a slot with (act or dAct in training), so the
 * loss costs no memory of its own; a smaller chunk only means more chunks (more dispatches).
 */
export const CE_SCRATCH_BYTES = 32 * 1024 * 1024;
export const CE_MIN_SCRATCH_BYTES = 4 * 1024 * 1024;

/** What one layer's forward writes (floats for M tokens; shapes in workspace.ts). */
export const LAYER_BUFFERS = ['rstd1', 'n1', 'qkv', 'attn', 'stats', 'h', 'rstd2', 'n2', 'gate', 'up', 'act'] as const;
export type LayerBufferName = (typeof LAYER_BUFFERS)[number];

/**
 * A buffer of one layer's pass: a LAYER_BUFFERS name, an adapted projection's `u` or dropout mask
 * output `xDrop`; the u of q/k/v adapters lie in one buffer `u qkv` (loraULayout).
 */
export type LayerKey = LayerBufferName | `u ${LoraTarget}` | 'u qkv' | `xDrop ${LoraTarget}`;

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

/** Inference, a training step that keeps what backward reads, or one that recomputes each layer in backward. */
export type PassKind = 'inference' | 'train' | 'train-recompute';

export interface WorkspacePlan {
  /** Tokens per pass it holds (batch x sequence length). */
  capacity: number;
  pass: PassKind;
  /** Vocabulary rows per cross-entropy chunk. */
  ceChunk: number;
  numLayers: number;
  /** The adapted projections, and where the u of the q/k/v ones lie in `u qkv` (floats). */
  loraTargets: readonly LoraTarget[];
  loraU: ReadonlyMap<LoraTarget, { offset: number; floats: number }>;
  /** Where q, k and v lie in each layer's `qkv` buffer (floats). */
  qkv: ReturnType<typeof qkvLayout>;
  /** Floats of every buffer one layer's pass writes. */
  layer: ReadonlyMap<LayerKey, number>;
  /** Per layer, the buffers stored for that layer alone (what its backward reads); the others are in the scratch set. */
  kept: ReadonlySet<LayerKey>[];
  /**
   * Residual streams 0..numLayers (each layer's input, then the last output): true where one is stored
   * for backward. The others alternate between two scratch streams (stream i uses scratch i % 2).
   */
  keptStreams: boolean[];
  stream: number;
  shared: Record<SharedBufferName, number>;
  /** Whether buffers with disjoint lifetimes share slots (off: every buffer its own, the reference for tests). */
  aliasing: boolean;
  /** Every buffer allocated once (scratch set, scratch streams, shared), in slots: several names, one allocation. */
  slots: Slot[];
}

export interface PlanOptions {
  /** Default true; see WorkspacePlan.aliasing. */
  aliasing?: boolean;
}

/** Where each projection sits in a layer's forward: q/k/v read n1, o reads attn, gate/up read n2, down reads act. */
const SLOT: Record<LoraTarget, number> = { q_proj: 0, k_proj: 0, v_proj: 0, o_proj: 1, gate_proj: 2, up_proj: 2, down_proj: 3 };
const SLOTS_PER_LAYER = 4;
const ADAPTER_INPUT: Record<LoraTarget, LayerBufferName> = {
  q_proj: 'n1',
  k_proj: 'n1',
  v_proj: 'n1',
  o_proj: 'attn',
  gate_proj: 'n2',
  up_proj: 'n2',
  down_proj: 'act',
};

/**
 * True when backward must carry the gradient to the input of the projections at `slot` (0 q/k/v,
 * 1 o, 2 gate/up, 3 down) of `layer`: some adapter sits earlier in the forward. Every layer has the
 * same targets, so only the first layer's backward stops early, below its first adapter.
 */
export function gradientBelow(targets: readonly LoraTarget[], layer: number, slot: number): boolean {
  return layer * SLOTS_PER_LAYER + slot > Math.min(...targets.map((t) => SLOT[t]));
}

/**
 * The buffers layer `layer`'s backward reads (src/model/llama.ts, `recordLayerBackward`): each
 * adapter's u and its input (drop(x) when dropout is on, since frozen weights need no dW); gate and
 * up for the SwiGLU backward, h and rstd2 for post_attention_layernorm's, qkv, attn and stats for
 * attention's, rstd1 (and the layer's input stream) for input_layernorm's, each where the gradient
 * must reach below that op.
 */
export function backwardReads(targets: readonly LoraTarget[], dropout: boolean, layer: number): Set<LayerKey> {
  const reads = new Set<LayerKey>();
  for (const t of targets) {
    reads.add(uKey(t));
    reads.add(dropout ? `xDrop ${t}` : ADAPTER_INPUT[t]);
  }
  const below = (slot: number) => gradientBelow(targets, layer, slot);
  if (below(3)) for (const name of ['gate', 'up'] as const) reads.add(name);
  if (below(2)) for (const name of ['h', 'rstd2'] as const) reads.add(name);
  if (below(1)) for (const name of ['qkv', 'attn', 'stats'] as const) reads.add(name);
  if (below(0)) reads.add('rstd1');
  return reads;
}

export function planWorkspace(
  config: ModelConfig,
  M: number,
  pass: PassKind,
  lora: WorkspaceLora | null,
  { aliasing = true }: PlanOptions = {},
): WorkspacePlan {
  const C = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const I = config.intermediateSize;
  const L = config.numLayers;
  const training = pass !== 'inference';
  const inFeatures: Record<LoraTarget, number> = {
    q_proj: C,
    k_proj: C,
    v_proj: C,
    o_proj: qDim,
    gate_proj: C,
    up_proj: C,
    down_proj: I,
  };
  const targets = lora?.targets ?? [];
  const dropout = training && lora !== null && lora.dropout > 0;
  const layer = new Map<LayerKey, number>([
    ['rstd1', M],
    ['n1', M * C],
    ['qkv', qkvLayout(M, config).floats],
    ['attn', M * qDim],
    ['stats', 2 * M * config.numHeads],
    ['h', M * C],
    ['rstd2', M],
    ['n2', M * C],
    ['gate', M * I],
    ['up', M * I],
    ['act', M * I],
  ]);
  for (const t of targets) {
    if (uKey(t) === `u ${t}`) layer.set(`u ${t}`, M * lora!.r);
    if (dropout) layer.set(`xDrop ${t}`, M * inFeatures[t]);
  }
  const loraU = loraULayout(M, lora?.r ?? 1, targets);
  if (loraU.floats) layer.set('u qkv', loraU.floats);
  const layers = Array.from({ length: L }, (_, l) => l);
  const kept = layers.map((l) => (pass === 'train' ? backwardReads(targets, dropout, l) : new Set<LayerKey>()));
  // Backward reads stream l in input_layernorm's backward, the last one in the final norm's; recomputation reads every input.
  const keptStreams = [...layers, L].map(
    (i) => pass === 'train-recompute' || (pass === 'train' && (i === L || gradientBelow(targets, i, 0))),
  );
  // Backward scratch exists only for training; inference keeps a one-float placeholder so every field is a buffer.
  const small = training ? M : 1;
  const shared: Record<SharedBufferName, number> = {
    branch: M * C,
    rstdFinal: M,
    nFinal: M * C,
    ids: M,
    targets: M,
    rowLoss: M,
    ceStats: M * 4,
    ceScratch: 0,
    dStream: small * C,
    dNorm: small * C,
    dq: small * qDim,
    dk: small * kvDim,
    dv: small * kvDim,
    dAttn: small * qDim,
    dAct: small * I,
    dU: small * (lora?.r ?? 1),
    dxScratch: dropout ? M * Math.max(C, qDim, I) : 1,
  };
  const buffers = { layer, kept, keptStreams, stream: M * C, shared };
  const single = singleBuffers(buffers);
  // The cross-entropy scratch takes the size of the largest buffer it may share a slot with, within its bounds.
  const sharable = [...single].filter(([name]) => disjoint(lifetime(name, pass), lifetime('ceScratch', pass)));
  const budget = Math.min(CE_SCRATCH_BYTES, Math.max(CE_MIN_SCRATCH_BYTES, ...sharable.map(([, floats]) => 4 * floats)));
  const ceChunk = Math.min(crossEntropyChunkRows(M, budget), config.vocabSize);
  shared.ceScratch = M * ceChunk;
  single.set('ceScratch', shared.ceScratch);
  const qkv = qkvLayout(M, config);
  return {
    capacity: M,
    pass,
    ceChunk,
    numLayers: L,
    qkv,
    loraTargets: targets,
    loraU: loraU.ranges,
    ...buffers,
    aliasing,
    slots: assignSlots(single, pass, aliasing),
  };
}

/** Every buffer the plan allocates once, with its floats: the scratch set, the scratch streams and the shared buffers. */
function singleBuffers(plan: Pick<WorkspacePlan, 'layer' | 'kept' | 'keptStreams' | 'stream' | 'shared'>): Map<SingleName, number> {
  const single = new Map<SingleName, number>();
  for (const key of scratchKeys(plan)) single.set(`scratch ${key}`, plan.layer.get(key)!);
  for (const slot of scratchStreamSlots(plan)) single.set(`stream scratch ${slot as 0 | 1}`, plan.stream);
  for (const name of SHARED_BUFFERS) single.set(name, plan.shared[name]);
  return single;
}

/** The layer buffers some layer does not keep: each exists once, in the scratch set. */
export function scratchKeys(plan: Pick<WorkspacePlan, 'layer' | 'kept'>): LayerKey[] {
  return [...plan.layer.keys()].filter((key) => plan.kept.some((kept) => !kept.has(key)));
}

/** The scratch stream slots in use (stream i not kept uses slot i % 2). */
export function scratchStreamSlots(plan: Pick<WorkspacePlan, 'keptStreams'>): number[] {
  return [0, 1].filter((slot) => plan.keptStreams.some((kept, i) => !kept && i % 2 === slot));
}

/** The byte size of every buffer the plan allocates, as the GPU allocates them. */
export function planBufferSizes(plan: WorkspacePlan): number[] {
  const sizes: number[] = [];
  const add = (floats: number) => sizes.push(allocatedSize(floats * 4));
  for (const kept of plan.kept) for (const key of kept) add(plan.layer.get(key)!);
  for (const kept of plan.keptStreams) if (kept) add(plan.stream);
  for (const slot of plan.slots) add(slot.floats);
  return sizes;
}

/**
 * True when a workspace allocated for `have` can run a pass that needs `need`: every buffer at least
 * as large, and every buffer `need` keeps for one layer (or one stream) kept there by `have` too,
 * since a shared scratch buffer would be overwritten before backward reads it; and every slot of
 * `have` safe for the pass `need` runs (and none shared when `need` has aliasing off).
 */
export function planCovers(have: WorkspacePlan, need: WorkspacePlan): boolean {
  if (have.capacity < need.capacity || have.numLayers !== need.numLayers || have.stream < need.stream) return false;
  if (need.pass !== 'inference' && have.pass === 'inference') return false;
  for (let l = 0; l < need.numLayers; l++) {
    for (const [key, floats] of need.layer) {
      if ((have.layer.get(key) ?? -1) < floats) return false;
      if (need.kept[l].has(key) && !have.kept[l].has(key)) return false;
    }
  }
  // q/k/v's u are ranges of `u qkv` laid out for the workspace's own targets and rank.
  for (const [t, range] of need.loraU) if ((have.loraU.get(t)?.floats ?? -1) < range.floats) return false;
  if (need.keptStreams.some((kept, i) => kept && !have.keptStreams[i])) return false;
  if (!need.aliasing && have.slots.some((slot) => slot.names.length > 1)) return false;
  if (!slotsSafeFor(have.slots, need.pass)) return false;
  // A pass runs with the workspace's own chunk, which a larger capacity only makes smaller.
  return SHARED_BUFFERS.every((name) => name === 'ceScratch' || have.shared[name] >= need.shared[name]);
}

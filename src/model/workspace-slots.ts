/**
 * Storage sharing for the workspace plan. The buffers a workspace allocates once (the shared ones,
 * the layers' scratch set, the scratch streams) share storage wherever their lifetimes never
 * overlap: several names, one allocation of the largest one's size (a slot).
 *
 * A pass runs three phases in order: `forward` (the batch's ids and targets written, the embedding,
 * every layer, the final norm), `loss` (the fused lm_head and cross-entropy, which in training also
 * writes d(loss)/d(final norm output) into dNorm; the logits of generation read the final norm's
 * output here too) and `backward` (the final norm's, then each layer's, after recording its forward
 * again with recomputation). A buffer's lifetime is the set of phases in which the pass writes or
 * reads it, chosen so that a value read in a later phase than the one that wrote it passes only
 * through phases of the set. Two buffers whose lifetimes share no phase can then share storage:
 * while one of them holds a value that will be read, the other is neither written nor read. Every
 * dispatch belongs to one phase, so no dispatch binds two names of one slot either (WebGPU refuses
 * a buffer bound twice in one dispatch when one of the bindings is writable).
 *
 * tests/model/workspace-slots.test.ts checks every lifetime against the dispatches of real passes
 * (each name bound only in phases of its lifetime) and poisons each slot with NaN at every phase
 * boundary that none of its names' values crosses (gradients unchanged, bit for bit).
 */
import type { LayerKey, PassKind, SharedBufferName } from './workspace-plan';

export const PHASES = ['forward', 'loss', 'backward'] as const;
export type Phase = (typeof PHASES)[number];

/**
 * A buffer a workspace allocates once: a shared buffer, the scratch-set copy of a layer buffer
 * (used by the layers that do not keep their own), or scratch stream 0 or 1.
 */
export type SingleName = SharedBufferName | `scratch ${LayerKey}` | `stream scratch ${0 | 1}`;

/** Names that share one allocation of `floats` (the largest of them). */
export interface Slot {
  floats: number;
  names: SingleName[];
}

const ALL: readonly Phase[] = PHASES;
const FORWARD: readonly Phase[] = ['forward'];
const NONE: readonly Phase[] = [];
/** Written and read by backward alone; inference never uses these (one-float placeholders there). */
const BACKWARD = (pass: PassKind): readonly Phase[] => (pass === 'inference' ? NONE : ['backward']);

/** The lifetime of every shared buffer, by pass kind. */
const SHARED_LIFETIMES: Record<SharedBufferName, (pass: PassKind) => readonly Phase[]> = {
  // o_proj's and down_proj's output, read by the residual add right after; with recomputation the
  // layers' forward runs again in backward, and writes it before each read there too.
  branch: (pass) => (pass === 'train-recompute' ? ['forward', 'backward'] : FORWARD),
  // Written by the final norm's forward, read by its backward.
  rstdFinal: (pass) => (pass === 'inference' ? FORWARD : ALL),
  // The final norm's output: read by the loss (or generation's logits).
  nFinal: () => ['forward', 'loss'],
  // Both written when the pass starts: the ids read by the embedding, the targets by the loss.
  ids: () => FORWARD,
  targets: () => ['forward', 'loss'],
  // The host reads the row losses after the pass (readLossSum), so they share with nothing.
  rowLoss: () => ALL,
  ceStats: () => ['loss'],
  ceScratch: () => ['loss'],
  // d(loss)/d(final norm output) from the loss, read by the final norm's backward; then each layer's
  // backward writes and reads it again.
  dNorm: (pass) => (pass === 'inference' ? NONE : ['loss', 'backward']),
  dStream: BACKWARD,
  dq: BACKWARD,
  dk: BACKWARD,
  dv: BACKWARD,
  dAttn: BACKWARD,
  dAct: BACKWARD,
  dU: BACKWARD,
  dxScratch: BACKWARD,
};

/** The phases in which a `pass` writes or reads the buffer `name` (see the module comment). */
export function lifetime(name: SingleName, pass: PassKind): readonly Phase[] {
  // A layer uses the scratch copy of a buffer when it keeps none of its own: in training, one its
  // backward never reads; at inference, every one. With recomputation every layer does, and the
  // last layer's forward values reach its backward through the loss (the others are written again
  // in backward before they are read).
  if (name.startsWith('scratch ')) return pass === 'train-recompute' ? ALL : FORWARD;
  // A stream no backward reads: written by the embedding or a layer, read by the next layer's
  // forward or the final norm's.
  if (name.startsWith('stream scratch ')) return FORWARD;
  return SHARED_LIFETIMES[name as SharedBufferName](pass);
}

/** True when the two lifetimes share no phase, so their buffers may share storage. */
export function disjoint(a: readonly Phase[], b: readonly Phase[]): boolean {
  return !a.some((phase) => b.includes(phase));
}

/**
 * Puts `buffers` into slots: the largest first, each into the first slot whose names' lifetimes
 * under `pass` all share no phase with its own (a new slot when there is none). Without `aliasing`
 * every buffer gets a slot of its own.
 */
export function assignSlots(buffers: ReadonlyMap<SingleName, number>, pass: PassKind, aliasing: boolean): Slot[] {
  const slots: Slot[] = [];
  const bySize = [...buffers].sort((a, b) => b[1] - a[1]);
  for (const [name, floats] of bySize) {
    const own = lifetime(name, pass);
    const slot = aliasing ? slots.find((s) => s.names.every((other) => disjoint(own, lifetime(other, pass)))) : undefined;
    if (slot) {
      slot.names.push(name);
      slot.floats = Math.max(slot.floats, floats);
    } else {
      slots.push({ floats, names: [name] });
    }
  }
  return slots;
}

/** True when every slot's names have pairwise disjoint lifetimes under `pass`. */
export function slotsSafeFor(slots: readonly Slot[], pass: PassKind): boolean {
  return slots.every((slot) =>
    slot.names.every((a, i) => slot.names.slice(i + 1).every((b) => disjoint(lifetime(a, pass), lifetime(b, pass)))),
  );
}

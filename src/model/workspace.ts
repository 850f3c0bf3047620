import type { Binding, Gpu } from '../gpu/context';
import type { LoraTarget } from '../lora/config';
import {
  LAYER_BUFFERS,
  type LayerBufferName,
  type LayerKey,
  SHARED_BUFFERS,
  type SharedBufferName,
  scratchKeys,
  scratchStreamSlots,
  type WorkspacePlan,
} from './workspace-plan';
import type { SingleName } from './workspace-slots';

/**
 * The buffers of one layer's pass, by the names of workspace-plan.ts:
 * rstd1 [M]; n1 [M, C] input_layernorm output; qkv, which holds q [M, H*D] and k [M, KV*D] after RoPE
 * and v [M, KV*D] as the ranges q, k, v (qkvLayout);
 * attn [M, H*D] attention output (o_proj input); stats [2, B*H*T] attention lse and backward
 * scratch; h [M, C] stream after the attention residual; rstd2 [M]; n2 [M, C]
 * post_attention_layernorm output; gate, up [M, I]; act [M, I] = silu(gate) * up (down_proj input).
 */
export type LayerActivations = Record<LayerBufferName, GPUBuffer> & {
  q: Binding;
  k: Binding;
  v: Binding;
  /** Per adapted projection: u = drop(x) A^T [M, r] (q/k/v's: ranges of one buffer), and drop(x) when dropout is on. */
  loraU: Map<LoraTarget, Binding>;
  loraXDrop: Map<LoraTarget, GPUBuffer>;
};

/**
 * The activation and scratch buffers of `plan` (see workspace-plan.ts for every buffer's shape):
 * shared ones as fields of the same name (`branch` [M, C] is the o_proj / down_proj output before
 * the residual add, `dU` [M, r] and `dxScratch` [M, max in] are LoRA backward scratch), layers by
 * index. A layer's set holds its own buffers where the plan keeps them and the scratch set's elsewhere.
 * Names the plan puts in one slot (workspace-slots.ts) are the same GPUBuffer, of the largest one's size.
 */
export class Workspace {
  readonly layers: LayerActivations[] = [];
  /** Residual stream before each layer and after the last (kept ones, or one of two scratch streams). */
  readonly stream: GPUBuffer[] = [];
  // The shared buffers by name (set from the plan in the constructor).
  declare readonly branch: GPUBuffer;
  declare readonly rstdFinal: GPUBuffer;
  declare readonly nFinal: GPUBuffer;
  declare readonly ids: GPUBuffer;
  declare readonly targets: GPUBuffer;
  declare readonly rowLoss: GPUBuffer;
  declare readonly ceStats: GPUBuffer;
  declare readonly ceScratch: GPUBuffer;
  declare readonly dStream: GPUBuffer;
  declare readonly dNorm: GPUBuffer;
  declare readonly dq: GPUBuffer;
  declare readonly dk: GPUBuffer;
  declare readonly dv: GPUBuffer;
  declare readonly dAttn: GPUBuffer;
  declare readonly dAct: GPUBuffer;
  declare readonly dU: GPUBuffer;
  declare readonly dxScratch: GPUBuffer;
  /** The buffers of layer l that are its own (the rest of `layer(l)` is scratch), by key. */
  readonly own: ReadonlyMap<LayerKey, GPUBuffer>[] = [];
  /** The scratch set that layers share and the scratch streams. */
  readonly scratch: ReadonlyMap<LayerKey, GPUBuffer>;
  readonly scratchStreams: GPUBuffer[] = [];
  /** One buffer per slot of the plan, in the plan's order. */
  readonly slots: GPUBuffer[];
  readonly bytes: number;
  readonly #buffers: GPUBuffer[] = [];

  constructor(
    gpu: Gpu,
    readonly plan: WorkspacePlan,
  ) {
    let bytes = 0;
    const make = (floats: number, label: string) => {
      const buffer = gpu.createBuffer(floats * 4, label);
      this.#buffers.push(buffer);
      bytes += buffer.size;
      return buffer;
    };
    const targets = plan.loraTargets;
    for (let l = 0; l < plan.numLayers; l++) {
      this.own.push(new Map([...plan.kept[l]].map((key) => [key, make(plan.layer.get(key)!, `${key} ${l}`)])));
    }
    this.slots = plan.slots.map((slot) => make(slot.floats, slot.names.join(', ')));
    const single = new Map<SingleName, GPUBuffer>();
    plan.slots.forEach((slot, i) => {
      for (const name of slot.names) single.set(name, this.slots[i]);
    });
    this.scratch = new Map(scratchKeys(plan).map((key) => [key, single.get(`scratch ${key}`)!]));
    for (let l = 0; l < plan.numLayers; l++) {
      const buffer = (key: LayerKey) => this.own[l].get(key) ?? this.scratch.get(key);
      const named = Object.fromEntries(LAYER_BUFFERS.map((name) => [name, buffer(name)!])) as Record<LayerBufferName, GPUBuffer>;
      const loraU = new Map<LoraTarget, Binding>(
        targets.map((t) => {
          const at = plan.loraU.get(t);
          return [t, at ? { buffer: buffer('u qkv')!, offset: at.offset * 4, size: at.floats * 4 } : buffer(`u ${t}`)!];
        }),
      );
      const loraXDrop = new Map(targets.filter((t) => plan.layer.has(`xDrop ${t}`)).map((t) => [t, buffer(`xDrop ${t}`)!]));
      const at = (offset: number, floats: number): Binding => ({ buffer: named.qkv, offset: offset * 4, size: floats * 4 });
      const { qkv } = plan;
      const q = at(qkv.q, qkv.k - qkv.q);
      this.layers.push({ ...named, q, k: at(qkv.k, qkv.v - qkv.k), v: at(qkv.v, qkv.floats - qkv.v), loraU, loraXDrop });
    }
    const streams = new Map(scratchStreamSlots(plan).map((slot) => [slot, single.get(`stream scratch ${slot as 0 | 1}`)!]));
    this.scratchStreams.push(...streams.values());
    for (const [i, kept] of plan.keptStreams.entries()) this.stream.push(kept ? make(plan.stream, `stream ${i}`) : streams.get(i % 2)!);
    for (const name of SHARED_BUFFERS) (this as Record<SharedBufferName, GPUBuffer>)[name] = single.get(name)!;
    this.bytes = bytes;
  }

  get capacity(): number {
    return this.plan.capacity;
  }

  get training(): boolean {
    return this.plan.pass !== 'inference';
  }

  get ceChunk(): number {
    return this.plan.ceChunk;
  }

  layer(l: number): LayerActivations {
    return this.layers[l];
  }

  /** Residual stream entering layer l (l = numLayers: the last layer's output). */
  streamAt(l: number): GPUBuffer {
    return this.stream[l];
  }

  destroy(): void {
    for (const buffer of this.#buffers) buffer.destroy();
  }
}

import type { Gpu } from '../gpu/context';
import type { LoraTarget } from '../lora/config';
import { LAYER_BUFFERS, type LayerBufferName, SHARED_BUFFERS, type SharedBufferName, type WorkspacePlan } from './workspace-plan';

/**
 * What one layer's forward saves for its backward, by the names of workspace-plan.ts:
 * rstd1 [M]; n1 [M, C] input_layernorm output; q [M, H*D] and k [M, KV*D] after RoPE; v [M, KV*D];
 * attn [M, H*D] attention output (o_proj input); stats [2, B*H*T] attention lse and backward
 * scratch; h [M, C] stream after the attention residual; rstd2 [M]; n2 [M, C]
 * post_attention_layernorm output; gate, up [M, I]; act [M, I] = silu(gate) * up (down_proj input).
 */
export type LayerActivations = Record<LayerBufferName, GPUBuffer> & {
  /** Per adapted projection: u = drop(x) A^T [M, r], and drop(x) when dropout is on. */
  loraU: Map<LoraTarget, GPUBuffer>;
  loraXDrop: Map<LoraTarget, GPUBuffer>;
};

/**
 * The activation and scratch buffers of `plan` (see workspace-plan.ts for every buffer's shape):
 * shared ones as fields of the same name (`branch` [M, C] is the o_proj / down_proj output before
 * the residual add, `dU` [M, r] and `dxScratch` [M, max in] are LoRA backward scratch), layers by index.
 */
export class Workspace {
  readonly layers: LayerActivations[] = [];
  /** Residual stream before each layer and after the last (alternating pair for inference). */
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
  declare readonly dGate: GPUBuffer;
  declare readonly dUp: GPUBuffer;
  declare readonly dAct: GPUBuffer;
  declare readonly dU: GPUBuffer;
  declare readonly dxScratch: GPUBuffer;
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
    for (let l = 0; l < plan.layerCount; l++) {
      const loraU = new Map<LoraTarget, GPUBuffer>();
      const loraXDrop = new Map<LoraTarget, GPUBuffer>();
      for (const module of plan.lora) {
        loraU.set(module.target, make(module.u, `u ${l} ${module.target}`));
        if (module.xDrop > 0) loraXDrop.set(module.target, make(module.xDrop, `xdrop ${l} ${module.target}`));
      }
      const buffers = Object.fromEntries(LAYER_BUFFERS.map((name) => [name, make(plan.layer[name], `${name} ${l}`)]));
      this.layers.push({ ...(buffers as Record<LayerBufferName, GPUBuffer>), loraU, loraXDrop });
    }
    for (let i = 0; i < plan.streamCount; i++) this.stream.push(make(plan.stream, `stream ${i}`));
    for (const name of SHARED_BUFFERS) (this as Record<SharedBufferName, GPUBuffer>)[name] = make(plan.shared[name], name);
    this.bytes = bytes;
  }

  get capacity(): number {
    return this.plan.capacity;
  }

  get training(): boolean {
    return this.plan.training;
  }

  get ceChunk(): number {
    return this.plan.ceChunk;
  }

  layer(l: number): LayerActivations {
    return this.layers[this.training ? l : 0];
  }

  /** Residual stream entering layer l (l = numLayers: the last layer's output). */
  streamAt(l: number): GPUBuffer {
    return this.training ? this.stream[l] : this.stream[l % 2];
  }

  destroy(): void {
    for (const buffer of this.#buffers) buffer.destroy();
  }
}

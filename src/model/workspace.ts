import type { Gpu } from '../gpu/context';
import type { LoraAdapter } from '../lora/adapter';
import type { ModelConfig } from './config';

/** What one layer's forward saves for its backward. */
export interface LayerActivations {
  rstd1: GPUBuffer; // [M]
  n1: GPUBuffer; // [M, C] input_layernorm output
  q: GPUBuffer; // [M, H*D] after RoPE
  k: GPUBuffer; // [M, KV*D] after RoPE
  v: GPUBuffer; // [M, KV*D]
  attn: GPUBuffer; // [M, H*D] attention output, o_proj input
  stats: GPUBuffer; // [2, B*H*T] attention lse + backward scratch
  h: GPUBuffer; // [M, C] stream after the attention residual
  rstd2: GPUBuffer; // [M]
  n2: GPUBuffer; // [M, C] post_attention_layernorm output
  gate: GPUBuffer; // [M, I]
  up: GPUBuffer; // [M, I]
  act: GPUBuffer; // [M, I] silu(gate) * up, down_proj input
  /** Per adapted module (by target): u = drop(x) A^T [M, r], and drop(x) when dropout is on. */
  loraU: Map<string, GPUBuffer>;
  loraXDrop: Map<string, GPUBuffer>;
}

/**
 * Activation and scratch buffers for batches of up to `capacity` tokens. Training keeps one set
 * per layer for the backward pass; inference reuses a single set.
 */
export class Workspace {
  readonly layers: LayerActivations[] = [];
  /** Residual stream before each layer and after the last: numLayers + 1 entries when training, 2 otherwise. */
  readonly stream: GPUBuffer[] = [];
  readonly branch: GPUBuffer; // [M, C] o_proj / down_proj output before the residual add
  readonly rstdFinal: GPUBuffer;
  readonly nFinal: GPUBuffer;
  readonly ids: GPUBuffer;
  readonly targets: GPUBuffer;
  readonly rowLoss: GPUBuffer;
  readonly ceStats: GPUBuffer;
  readonly ceScratch: GPUBuffer;
  readonly ceChunk: number;
  // Backward scratch.
  readonly dStream: GPUBuffer; // [M, C]
  readonly dNorm: GPUBuffer; // [M, C]
  readonly dq: GPUBuffer;
  readonly dk: GPUBuffer;
  readonly dv: GPUBuffer;
  readonly dAttn: GPUBuffer;
  readonly dGate: GPUBuffer;
  readonly dUp: GPUBuffer;
  readonly dAct: GPUBuffer;
  readonly dU: GPUBuffer; // [M, r]
  readonly dxScratch: GPUBuffer; // [M, max(in)] masked LoRA input gradient when dropout is on
  readonly bytes: number;
  private readonly buffers: GPUBuffer[] = [];

  constructor(
    gpu: Gpu,
    config: ModelConfig,
    readonly capacity: number,
    readonly training: boolean,
    adapter: LoraAdapter | null,
    ceChunk: number,
  ) {
    const M = capacity;
    const C = config.hiddenSize;
    const qDim = config.numHeads * config.headDim;
    const kvDim = config.numKvHeads * config.headDim;
    const I = config.intermediateSize;
    let bytes = 0;
    const make = (floats: number, label: string) => {
      const buffer = gpu.createBuffer(floats * 4, label);
      this.buffers.push(buffer);
      bytes += buffer.size;
      return buffer;
    };
    const layerCount = training ? config.numLayers : 1;
    const dropout = training && adapter ? adapter.config.dropout > 0 : false;
    for (let l = 0; l < layerCount; l++) {
      const loraU = new Map<string, GPUBuffer>();
      const loraXDrop = new Map<string, GPUBuffer>();
      for (const module of adapter?.layout.modules ?? []) {
        if (module.layer !== (training ? l : 0)) continue;
        loraU.set(module.target, make(M * adapter!.layout.r, `u ${l} ${module.target}`));
        if (dropout) loraXDrop.set(module.target, make(M * module.inFeatures, `xdrop ${l} ${module.target}`));
      }
      this.layers.push({
        rstd1: make(M, 'rstd1'),
        n1: make(M * C, 'n1'),
        q: make(M * qDim, 'q'),
        k: make(M * kvDim, 'k'),
        v: make(M * kvDim, 'v'),
        attn: make(M * qDim, 'attn'),
        stats: make(2 * M * config.numHeads, 'attn stats'),
        h: make(M * C, 'h'),
        rstd2: make(M, 'rstd2'),
        n2: make(M * C, 'n2'),
        gate: make(M * I, 'gate'),
        up: make(M * I, 'up'),
        act: make(M * I, 'act'),
        loraU,
        loraXDrop,
      });
    }
    for (let i = 0; i < (training ? config.numLayers + 1 : 2); i++) this.stream.push(make(M * C, `stream ${i}`));
    this.branch = make(M * C, 'branch');
    this.rstdFinal = make(M, 'rstd final');
    this.nFinal = make(M * C, 'final norm');
    this.ids = make(M, 'ids');
    this.targets = make(M, 'targets');
    this.rowLoss = make(M, 'row loss');
    this.ceStats = make(M * 4, 'ce stats');
    this.ceChunk = ceChunk;
    this.ceScratch = make(M * ceChunk, 'ce logits chunk');
    const small = training ? M : 1;
    const maxIn = Math.max(C, qDim, I);
    this.dStream = make(small * C, 'd stream');
    this.dNorm = make(small * C, 'd norm');
    this.dq = make(small * qDim, 'dq');
    this.dk = make(small * kvDim, 'dk');
    this.dv = make(small * kvDim, 'dv');
    this.dAttn = make(small * qDim, 'd attn');
    this.dGate = make(small * I, 'd gate');
    this.dUp = make(small * I, 'd up');
    this.dAct = make(small * I, 'd act');
    this.dU = make(small * (adapter?.layout.r ?? 1), 'du');
    this.dxScratch = make(dropout ? M * maxIn : 1, 'dx scratch');
    this.bytes = bytes;
  }

  layer(l: number): LayerActivations {
    return this.layers[this.training ? l : 0];
  }

  /** Residual stream entering layer l (l = numLayers: the last layer's output). */
  streamAt(l: number): GPUBuffer {
    return this.training ? this.stream[l] : this.stream[l % 2];
  }

  destroy(): void {
    for (const buffer of this.buffers) buffer.destroy();
  }
}

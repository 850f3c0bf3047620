import type { Binding, Gpu } from '../gpu/context';
import type { ModelConfig } from '../model/config';
import { type LoraConfig, type LoraTarget, loraScaling } from './config';
import { peftInitialParams } from './init';
import { type LoraLayout, type LoraModule, peftTensorName, planLoraLayout } from './layout';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export class AdapterMismatchError extends Error {
  override name = 'AdapterMismatchError';
}

/**
 * LoRA weights on the GPU in one flat parameter buffer (the layout of planLoraLayout): what
 * generation and evaluation need. Inference-only adapters are this class, with no gradient or
 * optimizer buffers; training uses LoraAdapter, which adds them.
 */
export class LoraWeights {
  readonly layout: LoraLayout;
  readonly scaling: number;
  readonly params: GPUBuffer;
  readonly #byKey = new Map<string, LoraModule>();
  /** False for a `scaledBy` view: it shares another adapter's buffers and frees none. */
  readonly #owner: boolean;

  /** `shared`: reuse another adapter's parameters under another scaling (see `scaledBy`) instead of allocating. */
  constructor(
    protected readonly gpu: Gpu,
    readonly model: ModelConfig,
    readonly config: LoraConfig,
    shared?: { from: LoraWeights; scaling: number },
  ) {
    this.layout = planLoraLayout(model, config);
    for (const module of this.layout.modules) this.#byKey.set(`${module.layer}.${module.target}`, module);
    this.scaling = shared?.scaling ?? loraScaling(config);
    this.#owner = !shared;
    this.params = shared ? shared.from.params : gpu.createBuffer(this.layout.totalFloats * 4, 'lora params');
  }

  /** An inference-only adapter on the GPU holding the given tensors (an imported or stored adapter). */
  static fromTensors(gpu: Gpu, model: ModelConfig, config: LoraConfig, tensors: Map<string, HostTensor>, source: string): LoraWeights {
    const adapter = new LoraWeights(gpu, model, config);
    adapter.loadTensors(tensors, source);
    return adapter;
  }

  /** Frees the GPU buffers this adapter owns; a view from `scaledBy` owns none. */
  destroy(): void {
    if (!this.#owner) return;
    for (const buffer of this.ownedBuffers()) buffer.destroy();
  }

  protected ownedBuffers(): GPUBuffer[] {
    return [this.params];
  }

  /**
   * The same GPU weights applied with `factor` times the LoRA scaling: adapter strength at
   * generation time without touching the stored A and B. The view must not outlive this adapter.
   */
  scaledBy(factor: number): LoraWeights {
    if (!Number.isFinite(factor)) throw new RangeError(`LoRA scale factor must be a finite number, got ${factor}`);
    return new LoraWeights(this.gpu, this.model, this.config, { from: this, scaling: this.scaling * factor });
  }

  get parameterCount(): number {
    return this.layout.modules.reduce((sum, m) => sum + this.layout.r * (m.inFeatures + m.outFeatures), 0);
  }

  module(layer: number, target: LoraTarget): LoraModule | undefined {
    return this.#byKey.get(`${layer}.${target}`);
  }

  view(module: LoraModule, matrix: 'A' | 'B'): Binding {
    return this.viewOf(this.params, module, matrix);
  }

  protected viewOf(buffer: GPUBuffer, module: LoraModule, matrix: 'A' | 'B'): Binding {
    const floats = matrix === 'A' ? this.layout.r * module.inFeatures : module.outFeatures * this.layout.r;
    const offset = matrix === 'A' ? module.aOffset : module.bOffset;
    return { buffer, offset: offset * 4, size: floats * 4 };
  }

  initPeft(seed: number): void {
    this.gpu.write(this.params, peftInitialParams(this.layout, seed));
  }

  /** Loads PEFT-named tensors; every adapted module must be present with the right shape. */
  loadTensors(tensors: Map<string, HostTensor>, source: string): void {
    const flat = new Float32Array(this.layout.totalFloats);
    const expected = new Set<string>();
    for (const module of this.layout.modules) {
      for (const matrix of ['A', 'B'] as const) {
        const name = peftTensorName(module, matrix);
        expected.add(name);
        const tensor = tensors.get(name);
        const shape = matrix === 'A' ? [this.layout.r, module.inFeatures] : [module.outFeatures, this.layout.r];
        if (!tensor) throw new AdapterMismatchError(`${source}: missing adapter tensor ${name} (expected shape [${shape}])`);
        if (tensor.shape.length !== 2 || tensor.shape[0] !== shape[0] || tensor.shape[1] !== shape[1]) {
          throw new AdapterMismatchError(`${source}: tensor ${name} has shape [${tensor.shape}] but this model and rank need [${shape}]`);
        }
        flat.set(tensor.data, matrix === 'A' ? module.aOffset : module.bOffset);
      }
    }
    const unexpected = [...tensors.keys()].filter((name) => !expected.has(name));
    if (unexpected.length) {
      throw new AdapterMismatchError(
        `${source}: tensors for modules this configuration does not adapt: ${unexpected.slice(0, 5).join(', ')}` +
          (unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''),
      );
    }
    this.gpu.write(this.params, flat);
  }

  /** Reads the parameters back as PEFT-named tensors. */
  readTensors(): Promise<Map<string, HostTensor>> {
    return this.tensorsOf(this.params);
  }

  protected async tensorsOf(buffer: GPUBuffer): Promise<Map<string, HostTensor>> {
    const flat = await this.gpu.readF32(buffer, this.layout.totalFloats);
    const out = new Map<string, HostTensor>();
    for (const module of this.layout.modules) {
      const r = this.layout.r;
      out.set(peftTensorName(module, 'A'), {
        shape: [r, module.inFeatures],
        data: flat.slice(module.aOffset, module.aOffset + r * module.inFeatures),
      });
      out.set(peftTensorName(module, 'B'), {
        shape: [module.outFeatures, r],
        data: flat.slice(module.bOffset, module.bOffset + module.outFeatures * r),
      });
    }
    return out;
  }
}

/** A LoRA adapter being trained: the weights plus their gradients and AdamW moments, all laid out like `params`. */
export class LoraAdapter extends LoraWeights {
  readonly grads: GPUBuffer;
  readonly m: GPUBuffer;
  readonly v: GPUBuffer;

  constructor(gpu: Gpu, model: ModelConfig, config: LoraConfig) {
    super(gpu, model, config);
    const bytes = this.layout.totalFloats * 4;
    this.grads = gpu.createBuffer(bytes, 'lora grads');
    this.m = gpu.createBuffer(bytes, 'adam m');
    this.v = gpu.createBuffer(bytes, 'adam v');
    this.resetOptimizerState();
  }

  protected override ownedBuffers(): GPUBuffer[] {
    return [this.params, this.grads, this.m, this.v];
  }

  gradView(module: LoraModule, matrix: 'A' | 'B'): Binding {
    return this.viewOf(this.grads, module, matrix);
  }

  readGradients(): Promise<Map<string, HostTensor>> {
    return this.tensorsOf(this.grads);
  }

  zeroGrads(): void {
    this.gpu.clear(this.grads);
  }

  resetOptimizerState(): void {
    this.gpu.clear(this.m);
    this.gpu.clear(this.v);
    this.gpu.clear(this.grads);
  }
}

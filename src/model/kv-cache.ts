import type { Binding, Gpu } from '../gpu/context';
import type { ModelConfig } from './config';

export class KvCacheError extends Error {
  override name = 'KvCacheError';
}

/**
 * Keys (after RoPE) and values of every layer for one sequence, [capacity, KV*D] per layer, so
 * generation runs each new token through the model once instead of re-running the whole prefix.
 * `length` positions are filled; LlamaModel.forwardCached appends to it.
 */
export class KvCache {
  readonly keys: GPUBuffer[] = [];
  readonly values: GPUBuffer[] = [];
  /** The last-position logits of the latest forwardCached. */
  readonly logits: GPUBuffer;
  length = 0;
  private readonly rowBytes: number;

  constructor(
    private readonly gpu: Gpu,
    config: ModelConfig,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new KvCacheError(`a KV cache needs room for at least one position, got ${capacity}`);
    this.rowBytes = config.numKvHeads * config.headDim * 4;
    for (let l = 0; l < config.numLayers; l++) {
      this.keys.push(gpu.createBuffer(capacity * this.rowBytes, `kv cache k ${l}`));
      this.values.push(gpu.createBuffer(capacity * this.rowBytes, `kv cache v ${l}`));
    }
    this.logits = gpu.createBuffer(config.vocabSize * 4, 'kv cache logits');
  }

  get bytes(): number {
    return 2 * this.keys.length * this.capacity * this.rowBytes + this.logits.size;
  }

  /** Records the copy of `count` new positions of layer `layer` into rows [length, length + count). */
  write(layer: number, k: Binding, v: Binding, count: number): void {
    const bytes = count * this.rowBytes;
    const offset = this.length * this.rowBytes;
    this.gpu.copy(k, { buffer: this.keys[layer], offset, size: bytes }, bytes);
    this.gpu.copy(v, { buffer: this.values[layer], offset, size: bytes }, bytes);
  }

  destroy(): void {
    for (const buffer of [...this.keys, ...this.values, this.logits]) buffer.destroy();
  }
}

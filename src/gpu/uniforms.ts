import type { Kernel, KernelParams } from './kernel';

const UNIFORM_SLOT = 256;
const UNIFORM_SLOTS_PER_BLOCK = 256;

/** Bytes of uniform blocks a pool holds when a submit records at most `slotsPerSubmit` dispatches. */
export function uniformPoolBytes(slotsPerSubmit: number): number {
  return Math.ceil(slotsPerSubmit / UNIFORM_SLOTS_PER_BLOCK) * UNIFORM_SLOTS_PER_BLOCK * UNIFORM_SLOT;
}

interface UniformBlock {
  buffer: GPUBuffer;
  staging: ArrayBuffer;
  used: number;
}

/**
 * Uniform values of the dispatches of one submit, in pooled 256-byte slots of a few large buffers.
 * Values are staged on the CPU and uploaded right before the submit, so recording a dispatch never
 * touches the queue. Slot n of a submit is the same range every submit, which keeps bind groups
 * that name it reusable while its contents change.
 */
export class UniformPool {
  private readonly blocks: UniformBlock[] = [];
  private blockIndex = 0;

  /** `allocate` creates a buffer with the Gpu's accounting. */
  constructor(private readonly allocate: (descriptor: GPUBufferDescriptor) => GPUBuffer) {}

  /** The next slot, holding `params` packed as `kernel` declares them. */
  slot(kernel: Kernel, params: KernelParams): { buffer: GPUBuffer; offset: number; size: number } {
    let block = this.blocks[this.blockIndex];
    if (block && block.used === UNIFORM_SLOTS_PER_BLOCK) block = this.blocks[++this.blockIndex];
    if (!block) {
      block = {
        buffer: this.allocate({
          label: 'uniforms',
          size: UNIFORM_SLOT * UNIFORM_SLOTS_PER_BLOCK,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }),
        staging: new ArrayBuffer(UNIFORM_SLOT * UNIFORM_SLOTS_PER_BLOCK),
        used: 0,
      };
      this.blocks[this.blockIndex] = block;
    }
    const offset = block.used * UNIFORM_SLOT;
    kernel.pack(params, new DataView(block.staging, offset, UNIFORM_SLOT));
    block.used++;
    return { buffer: block.buffer, offset, size: kernel.uniformBytes };
  }

  /** Uploads the staged values of this submit (unless `upload` is false) and starts the next submit at slot 0. */
  finishSubmit(queue: GPUQueue, upload: boolean): void {
    for (let i = 0; i <= this.blockIndex && i < this.blocks.length; i++) {
      const block = this.blocks[i];
      if (block.used > 0 && upload) queue.writeBuffer(block.buffer, 0, block.staging, 0, block.used * UNIFORM_SLOT);
      block.used = 0;
    }
    this.blockIndex = 0;
  }
}

/** Readback buffers up to this size are kept for reuse (a step's loss rows); larger ones are freed after use. */
const MAX_POOLED_READBACK_BYTES = 256 * 1024;
const MAX_POOLED_READBACKS = 8;

/** Bytes of GPU buffers created through a `Gpu`: live now, and the most live at once since `resetPeak`. */
export interface BufferAccounting {
  liveBytes: number;
  peakBytes: number;
  liveBuffers: number;
}

/**
 * Creates every buffer of a `Gpu` and counts its bytes, and pools the mappable buffers readbacks
 * copy into. Callers free buffers with `buffer.destroy()` (there is no destroy event), so that
 * method is wrapped to keep the count; a second destroy is harmless in WebGPU and is not counted twice.
 */
export class BufferAccountant {
  private liveBytes = 0;
  private peakBytes = 0;
  private liveBuffers = 0;
  private readonly readbackPool: GPUBuffer[] = [];

  constructor(
    private readonly device: GPUDevice,
    /** Called once when a buffer is destroyed (the bind group cache drops the groups that name it). */
    private readonly onDestroy: (buffer: GPUBuffer) => void,
  ) {}

  get accounting(): BufferAccounting {
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes, liveBuffers: this.liveBuffers };
  }

  /** Starts a new peak measurement from what is live now. */
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  allocate(descriptor: GPUBufferDescriptor): GPUBuffer {
    const buffer = this.device.createBuffer(descriptor);
    const bytes = buffer.size;
    this.liveBytes += bytes;
    this.liveBuffers++;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    const destroy = buffer.destroy.bind(buffer);
    let live = true;
    buffer.destroy = () => {
      if (live) {
        live = false;
        this.liveBytes -= bytes;
        this.liveBuffers--;
        this.onDestroy(buffer);
      }
      return destroy();
    };
    return buffer;
  }

  /** A free mappable buffer of at least `length` bytes, from the pool when one fits. */
  readbackBuffer(length: number): GPUBuffer {
    const size = readbackSize(length);
    const pooled = this.readbackPool.findIndex((b) => b.size === size);
    if (pooled >= 0) return this.readbackPool.splice(pooled, 1)[0];
    return this.allocate({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** Gives an unmapped readback buffer back: pooled if small and the pool has room, destroyed otherwise. */
  recycleReadback(buffer: GPUBuffer): void {
    if (buffer.size <= MAX_POOLED_READBACK_BYTES && this.readbackPool.length < MAX_POOLED_READBACKS) this.readbackPool.push(buffer);
    else buffer.destroy();
  }
}

/** The size of the mappable buffer `Gpu.read` copies `bytes` into. */
export function readbackSize(bytes: number): number {
  return Math.ceil((Math.ceil(bytes / 4) * 4) / 256) * 256;
}

/** GPU time of one recorded dispatch, from the timestamps written at the start and end of its compute pass. */
export interface DispatchTime {
  /** The kernel's entry point. */
  kernel: string;
  ns: number;
}

/**
 * Times every dispatch recorded while it is attached to a Gpu (`Gpu.timeDispatches`): each dispatch
 * gets a compute pass of its own whose timestamp writes bracket it (core WebGPU only writes
 * timestamps at pass boundaries), and each submit resolves its queries into a readback buffer.
 * Needs the device feature `timestamp-query`. One pass per dispatch costs a little, so this is for
 * profiling runs, never for training.
 */
export class DispatchTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  /** Entry points of the dispatches recorded since the last resolve, in order. */
  private kernels: string[] = [];
  private readonly submits: { kernels: string[]; readback: GPUBuffer }[] = [];

  constructor(
    device: GPUDevice,
    /** At least the most dispatches one submit holds. */
    private readonly capacity: number,
    private readonly allocate: (descriptor: GPUBufferDescriptor) => GPUBuffer,
  ) {
    if (!device.features.has('timestamp-query')) throw new Error('DispatchTimer: the device lacks the timestamp-query feature');
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
    this.resolveBuffer = allocate({
      label: 'timestamps',
      size: 16 * capacity,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** The timestamp writes of the pass that will hold the next dispatch, of `kernel`. */
  passWrites(kernel: string): GPUComputePassTimestampWrites {
    const index = this.kernels.length;
    if (index >= this.capacity) throw new Error(`DispatchTimer: more than ${this.capacity} dispatches in one submit`);
    this.kernels.push(kernel);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * index, endOfPassWriteIndex: 2 * index + 1 };
  }

  /** Records the resolve of this submit's queries into `encoder`, before it is finished. */
  resolve(encoder: GPUCommandEncoder): void {
    const count = this.kernels.length;
    if (count === 0) return;
    const readback = this.allocate({
      label: 'timestamp readback',
      size: 16 * count,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.querySet, 0, 2 * count, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, readback, 0, 16 * count);
    this.submits.push({ kernels: this.kernels, readback });
    this.kernels = [];
  }

  /** Every timed dispatch since the timer was attached, in recording order; call after the work is submitted. */
  async results(): Promise<DispatchTime[]> {
    const times: DispatchTime[] = [];
    for (const { kernels, readback } of this.submits.splice(0)) {
      await readback.mapAsync(GPUMapMode.READ);
      const stamps = new BigUint64Array(readback.getMappedRange().slice(0));
      readback.destroy();
      // A pass whose end stamp precedes its start (a reset counter) counts as 0 rather than wrapping.
      kernels.forEach((kernel, i) => {
        times.push({ kernel, ns: Math.max(0, Number(stamps[2 * i + 1] - stamps[2 * i])) });
      });
    }
    return times;
  }

  destroy(): void {
    for (const { readback } of this.submits.splice(0)) readback.destroy();
    this.resolveBuffer.destroy();
    this.querySet.destroy();
  }
}

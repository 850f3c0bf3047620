import { BindGroupCache } from './bind-groups';
import { GpuDeviceLostError, GpuValidationError } from './errors';
import { asRange, type BindGroupEntry, type Binding, Kernel, type KernelCall } from './kernel';
import { entryInterface } from './shader-interface';
import { UniformPool, uniformPoolBytes } from './uniforms';

export { asRange, type Binding, Kernel, type KernelCall, type KernelParams } from './kernel';

/** Long submits get killed by browsers' GPU watchdogs; split the work well before that. */
const MAX_DISPATCHES_PER_SUBMIT = 384;
/** Readback buffers up to this size are kept for reuse (a step's loss rows); larger ones are freed after use. */
const MAX_POOLED_READBACK_BYTES = 256 * 1024;
const MAX_POOLED_READBACKS = 8;

/** The most bytes of uniform blocks a Gpu holds: one slot per dispatch of the largest submit. */
export const UNIFORM_POOL_BYTES = uniformPoolBytes(MAX_DISPATCHES_PER_SUBMIT);

/** Bytes of GPU buffers created through a `Gpu`: live now, and the most live at once since `resetPeak`. */
export interface BufferAccounting {
  liveBytes: number;
  peakBytes: number;
  liveBuffers: number;
}

/** One recorded dispatch, as `Gpu.dispatch` received it (for profiling tools). */
export interface RecordedDispatch extends KernelCall {
  kernel: Kernel;
}

/**
 * Owns a GPUDevice for the engine: compiled kernels, buffer helpers with byte accounting, and a
 * recorder that puts many dispatches into one command buffer. Uniform values go into pooled slots
 * that are uploaded right before the submit, so recording a dispatch never touches the queue.
 */
export class Gpu {
  /** Compiled shaders and their kernels by source (module constants, so a lookup hashes no new string). */
  private readonly shaders = new Map<string, { module: GPUShaderModule; kernels: Map<string, Kernel> }>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private readonly uniforms = new UniformPool((descriptor) => this.allocate(descriptor));
  private readonly bindGroups: BindGroupCache;
  private lost: GpuDeviceLostError | null = null;
  private validationErrors: string[] = [];
  private liveBytes = 0;
  private peakBytes = 0;
  private liveBuffers = 0;
  private readonly readbackPool: GPUBuffer[] = [];
  private dispatchObserver: ((dispatch: RecordedDispatch) => void) | null = null;
  /**
   * Records, validates and allocates everything as usual but submits nothing: measures what a
   * step allocates at shapes far too slow to execute (SmolLM2 on a CPU adapter).
   */
  dryRun = false;
  /**
   * A CPU implementation (SwiftShader, lavapipe): kernels that offer a barrier-free schedule use
   * it there, since workgroup barriers are fiber switches on a CPU.
   */
  readonly isCpuAdapter: boolean;

  constructor(readonly device: GPUDevice) {
    this.bindGroups = new BindGroupCache(device);
    const info = device.adapterInfo as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
    const names = `${info?.architecture} ${info?.description} ${info?.device}`;
    this.isCpuAdapter = !!info && (info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(names));
    device.lost.then((info) => {
      this.lost = new GpuDeviceLostError(info.reason ?? 'unknown', info.message || 'no details');
    });
    device.addEventListener('uncapturederror', (event) => {
      this.validationErrors.push((event as GPUUncapturedErrorEvent).error.message);
    });
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /**
   * The entry point `entry` of a WGSL source, compiled once per Gpu. Its `struct Params` and storage
   * bindings are read from the source, and every dispatch is checked against them.
   */
  kernel(source: string, entry: string): Kernel {
    let shader = this.shaders.get(source);
    let kernel = shader?.kernels.get(entry);
    if (kernel) return kernel;
    const { shader: declared, entry: uses } = entryInterface(source, entry);
    if (!shader) this.shaders.set(source, (shader = { module: this.device.createShaderModule({ code: source }), kernels: new Map() }));
    const pipeline = this.device.createComputePipeline({
      // The entry point names the kernel in validation messages and for profiling tools.
      label: entry,
      layout: 'auto',
      compute: { module: shader.module, entryPoint: entry },
    });
    kernel = new Kernel(entry, pipeline, declared, uses);
    shader.kernels.set(entry, kernel);
    return kernel;
  }

  createBuffer(bytes: number, label: string): GPUBuffer {
    this.checkAlive();
    return this.allocate({
      label,
      size: allocatedSize(bytes),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }

  get bufferAccounting(): BufferAccounting {
    return { liveBytes: this.liveBytes, peakBytes: this.peakBytes, liveBuffers: this.liveBuffers };
  }

  /** Bind groups created, dispatches that reused a cached one, and how many are cached now. */
  get bindGroupStats(): { created: number; reused: number; cached: number } {
    return this.bindGroups.stats;
  }

  /** Starts a new peak measurement from what is live now. */
  resetPeak(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Calls `observer` for every dispatch recorded until the returned function is called. */
  observeDispatches(observer: (dispatch: RecordedDispatch) => void): () => void {
    this.dispatchObserver = observer;
    return () => {
      if (this.dispatchObserver === observer) this.dispatchObserver = null;
    };
  }

  /** A new buffer holding `data`. Nothing recorded can use it yet, so the write needs no flush (see `write`). */
  upload(data: Float32Array | Uint32Array | Int32Array, label: string): GPUBuffer {
    const buffer = this.createBuffer(data.byteLength, label);
    this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buffer;
  }

  /**
   * Writes `data` into the binding after everything recorded so far: queue writes run as soon as
   * they are issued, so recorded commands are submitted first (a recorded clear must not wipe a
   * later write, e.g. a checkpoint restored into a fresh adapter's moments).
   */
  write(target: Binding, data: Float32Array | Uint32Array | Int32Array, byteOffset = 0): void {
    const { buffer, offset } = asRange(target);
    if (this.encoder) this.flush();
    this.device.queue.writeBuffer(buffer, offset + byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /**
   * Records one dispatch of `kernel`: its params packed into a uniform slot at binding 0, its
   * bindings at the indices the shader declares (see KernelCall). Throws KernelArgumentError, having recorded
   * nothing, when the call does not match the shader. Bind groups are cached by pipeline and bound
   * ranges; the uniform slot is part of the key, and a step records the same dispatches in the same
   * order every time, so slot n of a submit gets the same bind group each step.
   */
  dispatch(kernel: Kernel, call: KernelCall): void {
    kernel.check(call);
    this.checkAlive();
    this.dispatchObserver?.({ kernel, ...call });
    const entries: BindGroupEntry[] = kernel.uses.params.size ? [{ binding: 0, resource: this.uniforms.slot(kernel, call.params) }] : [];
    kernel.storageEntries(call.bindings, entries);
    const pass = this.computePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, this.bindGroups.get(kernel.pipeline, entries));
    const [x, y = 1, z = 1] = call.workgroups;
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    if (++this.dispatches >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
  }

  /** Splits a 1-D grid over x and y so that no dimension exceeds the device limit. */
  grid(count: number): [number, number] {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (count <= max) return [count, 1];
    const y = Math.ceil(count / max);
    return [Math.ceil(count / y), y];
  }

  copy(src: Binding, dst: Binding, bytes: number): void {
    const s = asRange(src);
    const d = asRange(dst);
    this.commandEncoder().copyBufferToBuffer(s.buffer, s.offset, d.buffer, d.offset, bytes);
  }

  clear(target: Binding): void {
    const { buffer, offset, size } = asRange(target);
    this.commandEncoder().clearBuffer(buffer, offset, size);
  }

  /** Submits everything recorded so far. */
  flush(): void {
    this.checkAlive();
    if (!this.encoder) return;
    this.endPass();
    this.uniforms.finishSubmit(this.device.queue, !this.dryRun);
    const commands = this.encoder.finish();
    if (!this.dryRun) this.device.queue.submit([commands]);
    this.encoder = null;
    this.dispatches = 0;
  }

  /**
   * Flushes, then copies `bytes` from the binding back to the CPU. The copy is recorded and
   * submitted before this returns its promise, so a caller may record more work and await later.
   */
  async read(source: Binding, bytes?: number): Promise<ArrayBuffer> {
    const { buffer, offset, size } = asRange(source);
    const length = Math.ceil((bytes ?? size) / 4) * 4;
    const staging = this.readbackBuffer(length);
    this.commandEncoder().copyBufferToBuffer(buffer, offset, staging, 0, length);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, length);
    } catch (error) {
      staging.destroy();
      this.checkAlive();
      throw error;
    }
    const copy = staging.getMappedRange(0, length).slice(0);
    staging.unmap();
    if (staging.size <= MAX_POOLED_READBACK_BYTES && this.readbackPool.length < MAX_POOLED_READBACKS) this.readbackPool.push(staging);
    else staging.destroy();
    this.checkAlive();
    return copy;
  }

  async readF32(source: Binding, count?: number): Promise<Float32Array> {
    return new Float32Array(await this.read(source, count === undefined ? undefined : count * 4));
  }

  /** Waits for all submitted work; throws on a lost device or recorded validation errors. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.checkAlive();
  }

  private checkAlive(): void {
    if (this.lost) throw this.lost;
    if (this.validationErrors.length) {
      const messages = this.validationErrors.splice(0);
      throw new GpuValidationError(`WebGPU reported: ${messages.join('\n')}`);
    }
  }

  /** A free mappable buffer of at least `length` bytes, from the pool when one fits. */
  private readbackBuffer(length: number): GPUBuffer {
    const size = readbackSize(length);
    const pooled = this.readbackPool.findIndex((b) => b.size === size);
    if (pooled >= 0) return this.readbackPool.splice(pooled, 1)[0];
    return this.allocate({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /**
   * Every buffer the engine uses is created here, so the accounting sees it. Callers free buffers
   * with `buffer.destroy()` (there is no destroy event), so that method is wrapped to keep the
   * count; a second destroy is harmless in WebGPU and is not counted twice.
   */
  private allocate(descriptor: GPUBufferDescriptor): GPUBuffer {
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
        this.bindGroups.forget(buffer);
      }
      return destroy();
    };
    return buffer;
  }

  private commandEncoder(): GPUCommandEncoder {
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }
}

/** The size of the mappable buffer `Gpu.read` copies `bytes` into. */
export function readbackSize(bytes: number): number {
  return Math.ceil((Math.ceil(bytes / 4) * 4) / 256) * 256;
}

/** What `Gpu.createBuffer` really allocates for a request of `bytes` (16-byte multiples, never empty). */
export function allocatedSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

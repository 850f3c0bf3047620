import { BindGroupCache } from './bind-groups';
import { BufferAccountant, type BufferAccounting } from './buffers';
import { GpuDeviceLostError, GpuValidationError } from './errors';
import { asRange, type BindGroupEntry, type Binding, checkConstants, Kernel, type KernelCall, type KernelConstants } from './kernel';
import { entryInterface } from './shader-interface';
import { type DispatchTime, DispatchTimer } from './timestamps';
import { UniformPool, uniformPoolBytes } from './uniforms';

export { type BufferAccounting, readbackSize } from './buffers';
export { asRange, type Binding, Kernel, type KernelCall, type KernelConstants, type KernelParams } from './kernel';

/** Long submits get killed by browsers' GPU watchdogs; split the work well before that. */
const MAX_DISPATCHES_PER_SUBMIT = 384;

/** The most bytes of uniform blocks a Gpu holds: one slot per dispatch of the largest submit. */
export const UNIFORM_POOL_BYTES = uniformPoolBytes(MAX_DISPATCHES_PER_SUBMIT);

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
  private readonly buffers: BufferAccountant;
  private dispatchObserver: ((dispatch: RecordedDispatch) => void) | null = null;
  private timer: DispatchTimer | null = null;
  private finishedCommandBuffers = 0;
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
  /** The device has the `subgroups` feature (row reductions use subgroup sums). */
  readonly hasSubgroups: boolean;
  /** The device has `timestamp-query` (`timeDispatches` works). */
  readonly hasTimestamps: boolean;
  /**
   * Which schedule a kernel wrapper takes when its call names none: 'auto' its GPU schedule on GPUs
   * and its barrier-free one on CPU adapters; 'gpu' or 'cpu' forces that kind on any device (the
   * golden check runs the whole model on each kind). See `gpuSchedules`.
   */
  schedules: 'auto' | 'gpu' | 'cpu' = 'auto';
  /**
   * The matmul schedule (src/kernels/matmul.ts) for calls that name none, over what `schedules`
   * picks: the golden check runs the whole model on one of them (`--matmul subgroup`). Null: by `schedules`.
   */
  matmulSchedule: 'vec4' | 'tiled' | 'direct' | 'subgroup' | null = null;

  constructor(readonly device: GPUDevice) {
    this.bindGroups = new BindGroupCache(device);
    this.buffers = new BufferAccountant(device, (buffer) => this.bindGroups.forget(buffer));
    const info = device.adapterInfo as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
    const names = `${info?.architecture} ${info?.description} ${info?.device}`;
    this.isCpuAdapter = !!info && (info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(names));
    this.hasSubgroups = device.features.has('subgroups');
    this.hasTimestamps = device.features.has('timestamp-query');
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

  /** Whether wrappers default to their GPU schedules (workgroup tiles, barriers) here; see `schedules`. */
  get gpuSchedules(): boolean {
    return this.schedules === 'gpu' || (this.schedules === 'auto' && !this.isCpuAdapter);
  }

  /** Command buffers finished so far: submitted, or in dry-run only validated. */
  get commandBufferCount(): number {
    return this.finishedCommandBuffers;
  }

  /**
   * The entry point `entry` of a WGSL source, compiled once per Gpu and set of `constants` (the
   * shader's `override` constants it uses, checked like params). Its `struct Params` and storage
   * bindings are read from the source, and every dispatch is checked against them.
   */
  kernel(source: string, entry: string, constants?: KernelConstants): Kernel {
    let shader = this.shaders.get(source);
    const key = constants
      ? `${entry}|${Object.keys(constants)
          .sort()
          .map((name) => `${name}=${constants[name]}`)}`
      : entry;
    let kernel = shader?.kernels.get(key);
    if (kernel) return kernel;
    const { shader: declared, entry: uses } = entryInterface(source, entry);
    checkConstants(entry, declared, uses, constants ?? {});
    if (!shader) this.shaders.set(source, (shader = { module: this.device.createShaderModule({ code: source }), kernels: new Map() }));
    const pipeline = this.device.createComputePipeline({
      // The entry point names the kernel in validation messages and for profiling tools.
      label: entry,
      layout: 'auto',
      compute: { module: shader.module, entryPoint: entry, ...(constants && { constants: { ...constants } }) },
    });
    kernel = new Kernel(entry, pipeline, declared, uses, constants);
    shader.kernels.set(key, kernel);
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
    return this.buffers.accounting;
  }

  /** Bind groups created, dispatches that reused a cached one, and how many are cached now. */
  get bindGroupStats(): { created: number; reused: number; cached: number } {
    return this.bindGroups.stats;
  }

  /** Starts a new peak measurement from what is live now. */
  resetPeak(): void {
    this.buffers.resetPeak();
  }

  /** Calls `observer` for every dispatch recorded until the returned function is called. */
  observeDispatches(observer: (dispatch: RecordedDispatch) => void): () => void {
    this.dispatchObserver = observer;
    return () => {
      if (this.dispatchObserver === observer) this.dispatchObserver = null;
    };
  }

  /**
   * Times every dispatch recorded from now until the returned function is called, which submits,
   * stops timing and resolves to each dispatch's GPU time (needs `hasTimestamps`; see DispatchTimer).
   */
  timeDispatches(): () => Promise<DispatchTime[]> {
    this.flush();
    const timer = new DispatchTimer(this.device, MAX_DISPATCHES_PER_SUBMIT, (descriptor) => this.allocate(descriptor));
    this.timer = timer;
    return async () => {
      this.flush();
      if (this.timer === timer) this.timer = null;
      try {
        return await timer.results();
      } finally {
        timer.destroy();
      }
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
    const pass = this.timer ? this.timedPass(this.timer, kernel.name) : this.computePass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, this.bindGroups.get(kernel.pipeline, entries));
    const [x, y = 1, z = 1] = call.workgroups;
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    if (this.timer) this.endPass();
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
    this.timer?.resolve(this.encoder);
    this.uniforms.finishSubmit(this.device.queue, !this.dryRun);
    const commands = this.encoder.finish();
    this.finishedCommandBuffers++;
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
    const staging = this.buffers.readbackBuffer(length);
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
    this.buffers.recycleReadback(staging);
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

  /** Every buffer the engine uses is created here, so the accounting sees it. */
  private allocate(descriptor: GPUBufferDescriptor): GPUBuffer {
    return this.buffers.allocate(descriptor);
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

  /** A compute pass of its own for one dispatch, its start and end timestamped. */
  private timedPass(timer: DispatchTimer, kernel: string): GPUComputePassEncoder {
    this.endPass();
    this.pass = this.commandEncoder().beginComputePass({ timestampWrites: timer.passWrites(kernel) });
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }
}

/** What `Gpu.createBuffer` really allocates for a request of `bytes` (16-byte multiples, never empty). */
export function allocatedSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

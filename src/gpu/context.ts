import { GpuDeviceLostError, GpuValidationError } from './errors';

/** A storage binding: a whole buffer or a byte range of one (offsets 256-byte aligned). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/** A uniform field: plain numbers are u32; wrap floats and signed ints. */
export type Param = number | { f32: number } | { i32: number };
export const f32 = (value: number): Param => ({ f32: value });
export const i32 = (value: number): Param => ({ i32: value });

const UNIFORM_SLOT = 256;
const UNIFORM_SLOTS_PER_BLOCK = 256;
/** Long submits get killed by browsers' GPU watchdogs; split the work well before that. */
const MAX_DISPATCHES_PER_SUBMIT = 384;
/** A safety net: a training step needs a few thousand bind groups at most; past this the cache starts over. */
const MAX_CACHED_BIND_GROUPS = 16384;
/** Readback buffers up to this size are kept for reuse (a step's loss rows); larger ones are freed after use. */
const MAX_POOLED_READBACK_BYTES = 256 * 1024;
const MAX_POOLED_READBACKS = 8;

interface CachedBindGroup {
  group: GPUBindGroup;
  /** Ids of the buffers it binds. */
  buffers: number[];
}

interface UniformBlock {
  buffer: GPUBuffer;
  staging: ArrayBuffer;
  used: number;
}

/** Bytes of GPU buffers created through a `Gpu`: live now, and the most live at once since `resetPeak`. */
export interface BufferAccounting {
  liveBytes: number;
  peakBytes: number;
  liveBuffers: number;
}

/** One recorded dispatch, as `Gpu.dispatch` received it (for profiling tools). */
export interface RecordedDispatch {
  pipeline: GPUComputePipeline;
  params: readonly Param[] | null;
  bindings: readonly (Binding | undefined)[];
}

/**
 * Owns a GPUDevice for the engine: pipeline cache, buffer helpers, and a recorder that puts many
 * dispatches into one command buffer. Uniform parameters go into pooled 256-byte slots that are
 * uploaded right before the submit, so recording a dispatch never touches the queue.
 */
export class Gpu {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private readonly uniformBlocks: UniformBlock[] = [];
  private blockIndex = 0;
  private lost: GpuDeviceLostError | null = null;
  private validationErrors: string[] = [];
  private liveBytes = 0;
  private peakBytes = 0;
  private liveBuffers = 0;
  private bindGroupsCreated = 0;
  private bindGroupsReused = 0;
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;
  private readonly bindGroups = new Map<string, CachedBindGroup>();
  /** Cache keys by buffer id, so destroying a buffer drops the bind groups that name it. */
  private readonly bindGroupKeys = new Map<number, Set<string>>();
  private readonly readbackPool: GPUBuffer[] = [];
  private dispatchObserver: ((dispatch: RecordedDispatch) => void) | null = null;
  /**
   * Records, validates and allocates everything as usual but submits nothing: measures what a
   * step allocates at shapes far too slow to execute (SmolLM2 on a CPU adapter).
   */
  dryRun = false;
  readonly hasF16: boolean;
  /**
   * A CPU implementation (SwiftShader, lavapipe): kernels that offer a barrier-free schedule use
   * it there, since workgroup barriers are fiber switches on a CPU.
   */
  readonly isCpuAdapter: boolean;

  constructor(readonly device: GPUDevice) {
    this.hasF16 = device.features.has('shader-f16');
    const info = device.adapterInfo as (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
    this.isCpuAdapter =
      !!info && (info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe/i.test(`${info.architecture} ${info.description} ${info.device}`));
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

  /** Compiles (once) the entry point `entry` of a WGSL source. */
  pipeline(source: string, entry: string, constants?: Record<string, number>): GPUComputePipeline {
    const key = `${entry}|${JSON.stringify(constants ?? {})}|${source}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      let module = this.modules.get(source);
      if (!module) {
        module = this.device.createShaderModule({ code: source });
        this.modules.set(source, module);
      }
      pipeline = this.device.createComputePipeline({
        // The entry point names the kernel in validation messages and for profiling tools.
        label: entry,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
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
    return { created: this.bindGroupsCreated, reused: this.bindGroupsReused, cached: this.bindGroups.size };
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

  upload(data: Float32Array | Uint32Array | Int32Array, label: string): GPUBuffer {
    const buffer = this.createBuffer(data.byteLength, label);
    this.write(buffer, data);
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
   * Records `dispatchWorkgroups` with params at binding 0 and `bindings[i]` at binding i + 1.
   * Bind groups are cached by pipeline and bound ranges. The uniform slot is part of the key: a
   * step records the same dispatches in the same order every time, so slot n of a submit gets
   * the same bind group each step while its contents are rewritten before every submit.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    params: Param[] | null,
    bindings: (Binding | undefined)[],
    workgroups: [number, number?, number?],
  ): void {
    this.checkAlive();
    this.dispatchObserver?.({ pipeline, params, bindings });
    const entries: { binding: number; resource: GPUBufferBinding }[] = [];
    if (params) entries.push({ binding: 0, resource: this.uniformSlot(params) });
    bindings.forEach((binding, i) => {
      if (binding) entries.push({ binding: i + 1, resource: asRange(binding) });
    });
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroup(pipeline, entries));
    const [x, y = 1, z = 1] = workgroups;
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
    for (let i = 0; i <= this.blockIndex && i < this.uniformBlocks.length; i++) {
      const block = this.uniformBlocks[i];
      if (block.used > 0 && !this.dryRun) this.device.queue.writeBuffer(block.buffer, 0, block.staging, 0, block.used * UNIFORM_SLOT);
      block.used = 0;
    }
    this.blockIndex = 0;
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
    const size = Math.ceil(length / 256) * 256;
    const pooled = this.readbackPool.findIndex((b) => b.size === size);
    if (pooled >= 0) return this.readbackPool.splice(pooled, 1)[0];
    return this.allocate({ label: 'readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  private bindGroup(pipeline: GPUComputePipeline, entries: { binding: number; resource: GPUBufferBinding }[]): GPUBindGroup {
    const buffers = entries.map((e) => this.objectId(e.resource.buffer));
    const key = `${this.objectId(pipeline)}|${entries
      .map((e, i) => `${e.binding}:${buffers[i]}:${e.resource.offset}:${e.resource.size}`)
      .join('|')}`;
    const cached = this.bindGroups.get(key);
    if (cached) {
      this.bindGroupsReused++;
      return cached.group;
    }
    if (this.bindGroups.size >= MAX_CACHED_BIND_GROUPS) {
      this.bindGroups.clear();
      this.bindGroupKeys.clear();
    }
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    this.bindGroupsCreated++;
    this.bindGroups.set(key, { group, buffers });
    for (const id of buffers) {
      let keys = this.bindGroupKeys.get(id);
      if (!keys) this.bindGroupKeys.set(id, (keys = new Set()));
      keys.add(key);
    }
    return group;
  }

  /** A destroyed buffer's bind groups could never be used again; drop them so they can be collected. */
  private forgetBindGroups(buffer: GPUBuffer): void {
    const id = this.objectIds.get(buffer);
    const keys = id === undefined ? undefined : this.bindGroupKeys.get(id);
    if (!keys) return;
    for (const key of keys) {
      for (const other of this.bindGroups.get(key)?.buffers ?? []) if (other !== id) this.bindGroupKeys.get(other)?.delete(key);
      this.bindGroups.delete(key);
    }
    this.bindGroupKeys.delete(id!);
  }

  private objectId(object: object): number {
    let id = this.objectIds.get(object);
    if (id === undefined) {
      id = this.nextObjectId++;
      this.objectIds.set(object, id);
    }
    return id;
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
        this.forgetBindGroups(buffer);
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

  private uniformSlot(params: Param[]): GPUBufferBinding {
    let block = this.uniformBlocks[this.blockIndex];
    if (block && block.used === UNIFORM_SLOTS_PER_BLOCK) block = this.uniformBlocks[++this.blockIndex];
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
      this.uniformBlocks[this.blockIndex] = block;
    }
    const offset = block.used * UNIFORM_SLOT;
    const view = new DataView(block.staging, offset, UNIFORM_SLOT);
    params.forEach((param, i) => {
      if (typeof param === 'number') view.setUint32(i * 4, param, true);
      else if ('f32' in param) view.setFloat32(i * 4, param.f32, true);
      else view.setInt32(i * 4, param.i32, true);
    });
    block.used++;
    return { buffer: block.buffer, offset, size: Math.max(16, Math.ceil((params.length * 4) / 16) * 16) };
  }
}

/** What `Gpu.createBuffer` really allocates for a request of `bytes` (16-byte multiples, never empty). */
export function allocatedSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

export function asRange(binding: Binding): { buffer: GPUBuffer; offset: number; size: number } {
  return 'offset' in binding ? binding : { buffer: binding, offset: 0, size: binding.size };
}

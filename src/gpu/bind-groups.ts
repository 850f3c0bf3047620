import type { BindGroupEntry } from './kernel';

/** A safety net: a training step needs a few thousand bind groups at most; past this the cache starts over. */
const MAX_CACHED_BIND_GROUPS = 16384;

interface CachedBindGroup {
  group: GPUBindGroup;
  /** Ids of the buffers it binds. */
  buffers: number[];
}

/**
 * Bind groups by pipeline and bound ranges. A training step records the same dispatches with the
 * same buffers every time, so after the first step nearly every dispatch finds its group here.
 */
export class BindGroupCache {
  private created = 0;
  private reused = 0;
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;
  private readonly groups = new Map<string, CachedBindGroup>();
  /** Cache keys by buffer id, so destroying a buffer drops the bind groups that name it. */
  private readonly keysByBuffer = new Map<number, Set<string>>();

  constructor(private readonly device: GPUDevice) {}

  /** Bind groups created, dispatches that reused a cached one, and how many are cached now. */
  get stats(): { created: number; reused: number; cached: number } {
    return { created: this.created, reused: this.reused, cached: this.groups.size };
  }

  get(pipeline: GPUComputePipeline, entries: BindGroupEntry[]): GPUBindGroup {
    const buffers = entries.map((e) => this.objectId(e.resource.buffer));
    const key = `${this.objectId(pipeline)}|${entries
      .map((e, i) => `${e.binding}:${buffers[i]}:${e.resource.offset}:${e.resource.size}`)
      .join('|')}`;
    const cached = this.groups.get(key);
    if (cached) {
      this.reused++;
      return cached.group;
    }
    if (this.groups.size >= MAX_CACHED_BIND_GROUPS) {
      this.groups.clear();
      this.keysByBuffer.clear();
    }
    const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    this.created++;
    this.groups.set(key, { group, buffers });
    for (const id of buffers) {
      let keys = this.keysByBuffer.get(id);
      if (!keys) this.keysByBuffer.set(id, (keys = new Set()));
      keys.add(key);
    }
    return group;
  }

  /** A destroyed buffer's bind groups could never be used again; drop them so they can be collected. */
  forget(buffer: GPUBuffer): void {
    const id = this.objectIds.get(buffer);
    const keys = id === undefined ? undefined : this.keysByBuffer.get(id);
    if (!keys) return;
    for (const key of keys) {
      for (const other of this.groups.get(key)?.buffers ?? []) if (other !== id) this.keysByBuffer.get(other)?.delete(key);
      this.groups.delete(key);
    }
    this.keysByBuffer.delete(id!);
  }

  private objectId(object: object): number {
    let id = this.objectIds.get(object);
    if (id === undefined) {
      id = this.nextObjectId++;
      this.objectIds.set(object, id);
    }
    return id;
  }
}

import type { Gpu, RecordedDispatch } from '../gpu/context';

/**
 * Kernel families by entry point prefix: a family is one shader file (shaders/<family>.wgsl), and
 * every entry point of a file starts with its name, except the fused residual + norm, which lives in
 * rmsnorm.wgsl. The first matching prefix wins, so the longer one comes first.
 */
const FAMILY_PREFIXES: [prefix: string, family: string][] = [
  ['residual_rmsnorm', 'rmsnorm'],
  ['rmsnorm', 'rmsnorm'],
  ['residual', 'residual'],
  ['matmul_vec4', 'matmul-vec4'],
  ['matmul_subgroup', 'matmul-subgroup'],
  ['matmul', 'matmul'],
  ['lora', 'lora'],
  ['attention', 'attention'],
  ['rope', 'rope'],
  ['swiglu', 'swiglu'],
  ['embedding', 'embedding'],
  ['cross_entropy', 'cross-entropy'],
  ['grad_norm', 'grad-norm'],
  ['adamw', 'adamw'],
];

/** The family (shader file) of an entry point; an entry point no prefix knows is its own family. */
export function kernelFamily(entry: string): string {
  return FAMILY_PREFIXES.find(([prefix]) => entry.startsWith(prefix))?.[1] ?? entry;
}

/** How the GPU time of a family was measured. */
export type FamilyTimingMethod = 'timestamp-query' | 'alone';

export interface KernelFamilyTiming {
  family: string;
  dispatches_per_step: number;
  /** GPU time per step; null in memory-only mode. */
  ms_per_step: number | null;
  /** ms_per_step over the sum of all families' ms_per_step. */
  share: number | null;
}

export interface KernelTiming {
  kernel: string;
  family: string;
  dispatches_per_step: number;
  /** Only with timestamp queries (timing alone goes by family). */
  ms_per_step: number | null;
}

/** Milliseconds of one step per family (and per entry point, with timestamps), measured by `method`. */
export interface StepProfile {
  method: FamilyTimingMethod;
  families: Map<string, number>;
  kernels: Map<string, number> | null;
}

/**
 * Runs `step` (one training step, its work recorded and submitted) once and measures the GPU time of
 * each kernel family in it. 'timestamp-query': every dispatch of the step timestamped in a pass of its
 * own (see Gpu.timeDispatches), summed per family and entry point. 'alone': the step's dispatches
 * are recorded as they go by, then each family's are replayed by themselves, on the same buffers
 * and parameters, between device syncs (one untimed replay, then enough to fill `minMs`); the
 * replays change gradients and weights, so nothing may use them afterwards.
 */
export async function profileStep(gpu: Gpu, step: () => Promise<void>, method: FamilyTimingMethod, minMs: number): Promise<StepProfile> {
  if (method === 'timestamp-query') {
    const stop = gpu.timeDispatches();
    await step();
    const families = new Map<string, number>();
    const kernels = new Map<string, number>();
    for (const { kernel, ns } of await stop()) {
      kernels.set(kernel, (kernels.get(kernel) ?? 0) + ns / 1e6);
      families.set(kernelFamily(kernel), (families.get(kernelFamily(kernel)) ?? 0) + ns / 1e6);
    }
    return { method, families, kernels };
  }
  const recorded: RecordedDispatch[] = [];
  const stopObserving = gpu.observeDispatches((d) => recorded.push(d));
  try {
    await step();
  } finally {
    stopObserving();
  }
  await gpu.sync();
  const families = new Map<string, number>();
  for (const family of new Set(recorded.map((d) => kernelFamily(d.kernel.name)))) {
    const calls = recorded.filter((d) => kernelFamily(d.kernel.name) === family);
    const replay = async (times: number) => {
      const start = performance.now();
      for (let i = 0; i < times; i++) for (const { kernel, ...call } of calls) gpu.dispatch(kernel, call);
      await gpu.sync();
      return performance.now() - start;
    };
    await replay(1);
    const once = await replay(1);
    const times = Math.min(100, Math.max(1, Math.ceil(minMs / Math.max(once, 1e-3))));
    families.set(family, (await replay(times)) / times);
  }
  return { method, families, kernels: null };
}

/** Families and entry points with their dispatch counts per step and, when profiled, their times. */
export function familyTable(
  dispatches: Map<string, number>,
  steps: number,
  profile: StepProfile | null,
): { families: KernelFamilyTiming[]; kernels: KernelTiming[] } {
  const kernels: KernelTiming[] = [...dispatches].map(([kernel, count]) => ({
    kernel,
    family: kernelFamily(kernel),
    dispatches_per_step: count / steps,
    ms_per_step: profile?.kernels?.get(kernel) ?? null,
  }));
  const names = [...new Set(kernels.map((k) => k.family))];
  const total = profile ? [...profile.families.values()].reduce((a, b) => a + b, 0) : 0;
  const families = names.map((family): KernelFamilyTiming => {
    const ms = profile?.families.get(family) ?? null;
    return {
      family,
      dispatches_per_step: kernels.filter((k) => k.family === family).reduce((sum, k) => sum + k.dispatches_per_step, 0),
      ms_per_step: ms,
      share: ms === null || total === 0 ? null : ms / total,
    };
  });
  const order = (a: { ms_per_step: number | null; dispatches_per_step: number }, b: typeof a) =>
    (b.ms_per_step ?? 0) - (a.ms_per_step ?? 0) || b.dispatches_per_step - a.dispatches_per_step;
  return { families: families.sort(order), kernels: kernels.sort(order) };
}

import type { Gpu } from '../gpu/context';
import type { ModelConfig } from '../model/config';
import { type TwinCase, twinCases } from './check-cases';

export interface CheckOptions {
  configName: string;
  config: ModelConfig;
  seq: number;
  batch: number;
  /** LoRA rank: the width of the LoRA-shaped weight-gradient product. */
  r: number;
  seed: number;
}

/** Largest relative difference a GPU schedule may show against its CPU twin: max|gpu - cpu| / max|cpu| per output. */
export const CHECK_TOLERANCE = 1e-4;

export interface CheckedOutput {
  name: string;
  max_abs_err: number;
  max_abs_ref: number;
  rel_err: number;
}

export interface ScheduleCheck {
  family: string;
  op: string;
  gpu_schedule: string;
  cpu_schedule: string;
  shape: Record<string, number>;
  outputs: CheckedOutput[];
  rel_err: number;
  ok: boolean;
}

export interface CheckResult {
  benchmark: 'webtune-schedule-check';
  config: string;
  seq: number;
  batch: number;
  /** Every check within the bar. */
  ok: boolean;
  /** The largest rel_err of any output (Infinity, written as null in JSON, for a NaN). */
  worst: { family: string; op: string; gpu_schedule: string; output: string; rel_err: number };
  tolerance_rel_err: number;
  checks: ScheduleCheck[];
  device: { description: string; vendor: string; architecture: string; cpu_adapter: boolean; subgroups: boolean };
  date: string;
}

/**
 * Runs every GPU schedule and its CPU-schedule twin at one layer's shapes of `config` (B = batch,
 * T = seq, random inputs) and compares them: attention (forward and backward, and a KV-cache
 * forward), RMSNorm (forward, backward, fused with the residual; both row reductions), the vec4
 * elementwise kernels, and the matmul tiles of the layer's projections (vec4, subgroup where the
 * device has subgroups, tiled). Needs no test runner, so a GPU machine can prove its GPU paths before
 * timing them.
 */
export async function runScheduleCheck(gpu: Gpu, o: CheckOptions): Promise<CheckResult> {
  const checks: ScheduleCheck[] = [];
  for (const c of twinCases(gpu, o)) checks.push(await runTwins(gpu, c));
  let worst = { family: '', op: '', gpu_schedule: '', output: '', rel_err: 0 };
  for (const check of checks) {
    for (const out of check.outputs) {
      if (out.rel_err >= worst.rel_err)
        worst = { family: check.family, op: check.op, gpu_schedule: check.gpu_schedule, output: out.name, rel_err: out.rel_err };
    }
  }
  const info = gpu.device.adapterInfo;
  return {
    benchmark: 'webtune-schedule-check',
    config: o.configName,
    seq: o.seq,
    batch: o.batch,
    ok: checks.every((c) => c.ok),
    worst,
    tolerance_rel_err: CHECK_TOLERANCE,
    checks,
    device: {
      description: info.description,
      vendor: info.vendor,
      architecture: info.architecture,
      cpu_adapter: gpu.isCpuAdapter,
      subgroups: gpu.hasSubgroups,
    },
    date: new Date().toISOString().slice(0, 10),
  };
}

async function runTwins(gpu: Gpu, c: TwinCase): Promise<ScheduleCheck> {
  const buffers: GPUBuffer[] = [];
  const make = (data: Float32Array, label: string) => {
    const buffer = gpu.upload(data, label);
    buffers.push(buffer);
    return buffer;
  };
  try {
    const inputs = Object.fromEntries(Object.entries(c.inputs).map(([name, data]) => [name, make(data, name)]));
    const results: Record<string, Float32Array>[] = [];
    for (const schedule of [c.gpu, c.cpu]) {
      const outputs = Object.fromEntries(
        Object.entries(c.outputs).map(([name, o]) => [name, make(typeof o === 'number' ? new Float32Array(o).fill(Number.NaN) : o, name)]),
      );
      c.run(gpu, { ...inputs, ...outputs }, schedule);
      const read: Record<string, Float32Array> = {};
      for (const [name, o] of Object.entries(c.outputs))
        read[name] = await gpu.readF32(outputs[name], typeof o === 'number' ? o : o.length);
      results.push(read);
    }
    const outputs = Object.keys(c.outputs).map((name) => compare(name, results[0][name], results[1][name]));
    const relErr = Math.max(...outputs.map((out) => out.rel_err));
    return {
      family: c.family,
      op: c.op,
      gpu_schedule: c.gpu,
      cpu_schedule: c.cpu,
      shape: c.shape,
      outputs,
      rel_err: relErr,
      ok: relErr <= CHECK_TOLERANCE,
    };
  } finally {
    for (const buffer of buffers) buffer.destroy();
  }
}

/** max|actual - expected| and max|expected|; a NaN in either, or different lengths, is an infinite error. */
export function compare(name: string, actual: Float32Array, expected: Float32Array): CheckedOutput {
  let maxAbs = actual.length === expected.length ? 0 : Number.POSITIVE_INFINITY;
  let maxRef = 0;
  for (let i = 0; i < expected.length && maxAbs < Number.POSITIVE_INFINITY; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    maxAbs = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : Math.max(maxAbs, diff);
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return { name, max_abs_err: maxAbs, max_abs_ref: maxRef, rel_err: maxRef > 0 ? maxAbs / maxRef : maxAbs };
}

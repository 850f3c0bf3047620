import { describe, expect, it } from 'vitest';
import { type BenchOptions, runBenchmark } from '../../src/bench/bench';
import { runScheduleCheck } from '../../src/bench/check';
import { BUILT_IN_CONFIGS } from '../../src/bench/configs';
import { kernelFamily } from '../../src/bench/families';
import { Gpu } from '../../src/gpu/context';
import { createNodeDevice } from '../../src/gpu/node-device';
import { validateLoraConfig } from '../../src/lora/config';
import { parseModelConfig } from '../../src/model/config';
import { tinyConfig } from '../helpers/tiny-model';

const config = tinyConfig();
const OPTIONS: BenchOptions = {
  configName: 'tiny',
  config,
  seq: 8,
  batch: 2,
  lora: validateLoraConfig({ r: 2, alpha: 4, targets: ['q_proj', 'v_proj'] }),
  warmup: 1,
  steps: 1,
  memoryOnly: false,
  seed: 3,
  matmulMinMs: 1,
};

/** A device of its own per run, so the buffer accounting sees nothing but the benchmark. */
const freshGpu = async () => new Gpu(await createNodeDevice());

describe('benchmark', () => {
  it('reports throughput, matmul speeds and a peak that memory-only mode reproduces', async () => {
    const steps = await runBenchmark(await freshGpu(), { ...OPTIONS, matmulSchedules: ['vec4', 'subgroup'] });
    const memoryOnly = await runBenchmark(await freshGpu(), { ...OPTIONS, memoryOnly: true });

    expect(steps.mode).toBe('steps');
    expect(steps.tokens_per_step).toBe(16);
    expect(steps.tokens_per_s).toBeGreaterThan(0);
    expect(steps.step_ms).toHaveLength(1);
    expect(steps.ms_per_step!.median).toBeGreaterThan(0);
    expect(steps.device.cpu_adapter).toBe(true);
    expect(steps.record_ms_per_step).toBeGreaterThan(0);
    // The second step records the same dispatches into the same uniform slots: every bind group is reused.
    expect(steps.bind_groups.reused).toBeGreaterThanOrEqual(steps.dispatches_per_step);

    // gate_proj and up_proj forward: X [M, C] W^T with W [I, C], once each per layer.
    const M = OPTIONS.batch * OPTIONS.seq;
    const gateUp = steps.matmul.find(
      (m) => m.wrapper === 'matmulXWt' && m.M === M && m.N === config.intermediateSize && m.K === config.hiddenSize,
    );
    expect(gateUp?.calls_per_step).toBe(2 * config.numLayers);
    for (const m of steps.matmul) expect(m.gflops).toBeGreaterThan(0);
    for (const m of steps.matmul) {
      expect(Object.keys(m.ms_per_call_by_schedule ?? {})).toEqual(['vec4', 'subgroup']);
      for (const ms of Object.values(m.ms_per_call_by_schedule ?? {})) expect(ms).toBeGreaterThan(0);
    }
    expect(steps.matmul_flops_per_step).toBeGreaterThan(2 * M * config.intermediateSize * config.hiddenSize * 2 * config.numLayers);

    const { memory } = steps;
    expect(memory.weights_bytes).toBeGreaterThanOrEqual(steps.model.parameters * 4);
    expect(memory.activation_bytes).toBeGreaterThan(0);
    expect(memory.other_bytes).toBeGreaterThan(0);
    expect(steps.peak_memory_bytes).toBe(
      memory.weights_bytes + memory.adapter_and_optimizer_bytes + memory.activation_bytes + memory.other_bytes,
    );
    expect(steps.peak_memory_bytes).toBeGreaterThan(memory.weights_bytes + memory.activation_bytes);
    expect(memory.estimate.activation_bytes).toBe(memory.activation_bytes);
    expect(memory.estimate_bytes).toBe(Object.values(memory.estimate).reduce((a, b) => a + b, 0));
    expect(memory.estimate_error).toBeCloseTo(memory.estimate_bytes / steps.peak_memory_bytes - 1, 12);
    expect(steps.recompute).toEqual({ mode: 'off', on: false });

    expect(memoryOnly).toMatchObject({ mode: 'memory-only', tokens_per_s: null, ms_per_step: null, step_ms: [] });
    expect(memoryOnly.peak_memory_bytes).toBe(steps.peak_memory_bytes);
    expect(memoryOnly.memory).toEqual(steps.memory);
    expect(memoryOnly.dispatches_per_step).toBe(steps.dispatches_per_step);
    expect(memoryOnly.record_ms_per_step).toBeGreaterThan(0);

    // Per family: dispatch counts that add up to the step's, GPU times from timestamp queries
    // (SwiftShader offers them), per entry point too; memory-only has the counts but no times.
    expect(steps.command_buffers_per_step).toBeGreaterThanOrEqual(1);
    expect(memoryOnly.command_buffers_per_step).toBe(steps.command_buffers_per_step);
    expect(steps.kernel_timing.method).toBe('timestamp-query');
    const families = new Map(steps.kernel_families.map((f) => [f.family, f]));
    for (const family of ['matmul', 'attention', 'cross-entropy']) {
      expect(families.get(family)?.ms_per_step, family).toBeGreaterThan(0);
    }
    // On this tiny model a family's few small dispatches can take less than SwiftShader's timestamp quantum (65.5 µs).
    for (const family of ['rmsnorm', 'residual', 'swiglu', 'rope', 'embedding', 'adamw']) {
      expect(families.get(family)?.dispatches_per_step, family).toBeGreaterThan(0);
      expect(families.get(family)?.ms_per_step, family).toBeGreaterThanOrEqual(0);
    }
    // Per layer: the input norm, the fused residual + post-attention norm, their two backward passes; plus the final norm and
    // its backward; minus the first layer's input-norm backward (nothing below it takes a gradient).
    expect(families.get('rmsnorm')!.dispatches_per_step).toBe(4 * config.numLayers + 1);
    expect(steps.kernel_families.reduce((sum, f) => sum + f.dispatches_per_step, 0)).toBe(steps.dispatches_per_step);
    expect(steps.kernel_families.reduce((sum, f) => sum + f.share!, 0)).toBeCloseTo(1, 9);
    expect(steps.kernel_timing.profiled_ms_per_step).toBeCloseTo(
      steps.kernels.reduce((sum, k) => sum + k.ms_per_step!, 0),
      6,
    );
    const counts = (r: typeof steps) => Object.fromEntries(r.kernel_families.map((f) => [f.family, f.dispatches_per_step]));
    expect(counts(memoryOnly)).toEqual(counts(steps));
    for (const f of memoryOnly.kernel_families) expect(f.ms_per_step).toBeNull();
    expect(steps.schedules).toEqual({ preference: 'auto', gpu_schedules: false });
  });

  it('times each family alone where timestamps are not used, and forces the GPU schedules', async () => {
    const gpu = await freshGpu();
    gpu.schedules = 'gpu';
    const alone = await runBenchmark(gpu, { ...OPTIONS, warmup: 0, familyTiming: 'alone' });
    expect(alone.kernel_timing.method).toBe('alone');
    expect(alone.schedules).toEqual({ preference: 'gpu', gpu_schedules: true });
    for (const f of alone.kernel_families) expect(f.ms_per_step, f.family).toBeGreaterThan(0);
    for (const k of alone.kernels) expect(k.ms_per_step).toBeNull();
    const names = alone.kernels.map((k) => k.kernel);
    expect(names).toEqual(
      expect.arrayContaining(['attention_forward_tiled', 'attention_backward_dkdv_tiled', 'rmsnorm_forward', 'matmul_vec4_forward']),
    );
    expect(names).not.toContain('attention_forward');
  });

  it('names the kernel family of every entry point by its shader file', () => {
    expect(kernelFamily('residual_rmsnorm_forward_rows')).toBe('rmsnorm');
    expect(kernelFamily('residual_forward_vec4')).toBe('residual');
    expect(kernelFamily('cross_entropy_online_chunk')).toBe('cross-entropy');
    expect(kernelFamily('attention_backward_dkdv_tiled')).toBe('attention');
    expect(kernelFamily('matmul_vec4_backward_weight_split')).toBe('matmul-vec4');
    expect(kernelFamily('matmul_subgroup_forward_bias')).toBe('matmul-subgroup');
    expect(kernelFamily('matmul_forward_direct')).toBe('matmul');
    expect(kernelFamily('something_new')).toBe('something_new');
  });

  it("--check: every GPU schedule agrees with its CPU twin at a config's shapes", async () => {
    const result = await runScheduleCheck(await freshGpu(), { configName: 'tiny', config, seq: 9, batch: 2, r: 3, seed: 1 });
    expect(result.ok).toBe(true);
    expect(result.worst.rel_err).toBeLessThan(result.tolerance_rel_err);
    const ops = result.checks.map((c) => `${c.family} ${c.gpu_schedule}`);
    expect(ops).toEqual(
      expect.arrayContaining([
        'attention tiled',
        'rmsnorm workgroup (subgroup sums)',
        'rmsnorm workgroup (tree sums)',
        'residual vec4',
        'swiglu vec4',
        'matmul tiled',
        'matmul vec4',
        'matmul subgroup',
      ]),
    );
    for (const c of result.checks)
      for (const out of c.outputs) expect(out.max_abs_ref, `${c.family} ${c.op} ${out.name}`).toBeGreaterThan(0);
  });

  it('with recomputation: less activation memory, as estimated, and memory-only mode still reproduces the peak', async () => {
    const on = { ...OPTIONS, recompute: 'on' as const };
    const steps = await runBenchmark(await freshGpu(), on);
    const memoryOnly = await runBenchmark(await freshGpu(), { ...on, memoryOnly: true });
    const off = await runBenchmark(await freshGpu(), { ...OPTIONS, memoryOnly: true });
    expect(steps.recompute).toEqual({ mode: 'on', on: true });
    expect(memoryOnly.peak_memory_bytes).toBe(steps.peak_memory_bytes);
    expect(steps.memory.activation_bytes).toBeLessThan(off.memory.activation_bytes);
    expect(steps.memory.estimate.activation_bytes).toBe(steps.memory.activation_bytes);
    // Recomputation records the forward of every layer but the last a second time.
    expect(steps.dispatches_per_step).toBeGreaterThan(off.dispatches_per_step);
    // auto with a budget below the run's estimate turns it on.
    const auto = await runBenchmark(await freshGpu(), { ...OPTIONS, memoryOnly: true, recompute: 'auto', memoryBudget: 1024 });
    expect(auto.recompute).toEqual({ mode: 'auto', on: true });
    expect(auto.peak_memory_bytes).toBe(memoryOnly.peak_memory_bytes);
  });

  it('--weights bf16 stores the weight matrices in 16 bits and times the 16-bit matmuls', async () => {
    const f32 = await runBenchmark(await freshGpu(), { ...OPTIONS, memoryOnly: true });
    const bf16 = await runBenchmark(await freshGpu(), { ...OPTIONS, weights: 'bf16' });
    expect([f32.weights, bf16.weights]).toEqual(['f32', 'bf16']);
    expect(bf16.precision).toMatch(/^bf16 weight matrices/);
    expect(bf16.model.parameters).toBe(f32.model.parameters);
    // Matrices at 2 bytes, norms and biases (a few hundred values) at 4, each buffer padded to 16 bytes.
    expect(bf16.memory.weights_bytes).toBeLessThan(0.55 * f32.memory.weights_bytes);
    const frozen = bf16.matmul.filter((m) => m.weight_format === 'bf16');
    expect(new Set(frozen.map((m) => m.wrapper))).toEqual(new Set(['matmulXWt', 'matmulDyW']));
    // LoRA's own products and dY^T X read f32.
    expect(bf16.matmul.some((m) => m.weight_format === 'f32')).toBe(true);
    for (const m of frozen) expect(m.gflops).toBeGreaterThan(0);
  });

  it('knows the built-in models by their Hugging Face configs', () => {
    const smol = parseModelConfig(BUILT_IN_CONFIGS['smollm2-135m']);
    expect(smol).toMatchObject({
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      vocabSize: 49152,
    });
    expect(smol).toMatchObject({ tieWordEmbeddings: true, ropeTheta: 100000, rmsNormEps: 1e-5, maxPositionEmbeddings: 8192 });
    expect(parseModelConfig(BUILT_IN_CONFIGS.stories260K)).toMatchObject({ hiddenSize: 64, numLayers: 5, vocabSize: 512 });
  });
});

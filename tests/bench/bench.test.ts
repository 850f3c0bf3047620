import { describe, expect, it } from 'vitest';
import { type BenchOptions, runBenchmark } from '../../src/bench/bench';
import { BUILT_IN_CONFIGS } from '../../src/bench/configs';
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
    const steps = await runBenchmark(await freshGpu(), OPTIONS);
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
    expect(steps.matmul_flops_per_step).toBeGreaterThan(2 * M * config.intermediateSize * config.hiddenSize * 2 * config.numLayers);

    const { memory } = steps;
    expect(memory.weights_bytes).toBeGreaterThanOrEqual(steps.model.parameters * 4);
    expect(memory.workspace_bytes).toBeGreaterThan(0);
    expect(memory.other_bytes).toBeGreaterThan(0);
    expect(steps.peak_memory_bytes).toBe(
      memory.weights_bytes + memory.adapter_and_optimizer_bytes + memory.workspace_bytes + memory.other_bytes,
    );
    expect(steps.peak_memory_bytes).toBeGreaterThan(memory.weights_bytes + memory.workspace_bytes);

    expect(memoryOnly).toMatchObject({ mode: 'memory-only', tokens_per_s: null, ms_per_step: null, step_ms: [] });
    expect(memoryOnly.peak_memory_bytes).toBe(steps.peak_memory_bytes);
    expect(memoryOnly.memory).toEqual(steps.memory);
    expect(memoryOnly.dispatches_per_step).toBe(steps.dispatches_per_step);
    expect(memoryOnly.record_ms_per_step).toBeGreaterThan(0);
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

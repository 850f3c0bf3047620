import { describe, expect, it } from 'vitest';
import {
  ADAPTER_MEMORY_SHARE,
  adapterMemoryBytes,
  DEFAULT_MEMORY_BUDGET_BYTES,
  estimateTrainingMemory,
  memoryBudget,
} from '../../src/app/memory';
import { runBenchmark } from '../../src/bench/bench';
import { BUILT_IN_CONFIGS } from '../../src/bench/configs';
import { Gpu } from '../../src/gpu/context';
import { createNodeDevice } from '../../src/gpu/node-device';
import { LoraAdapter } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { parseModelConfig } from '../../src/model/config';
import { LlamaModel } from '../../src/model/llama';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';

const ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const device = (limits: { maxStorageBufferBindingSize: number; maxBufferSize: number }) => ({ limits, adapterMemoryBytes: null });

describe('training memory estimate', () => {
  it.each([
    { name: 'q/v without dropout', targets: ['q_proj', 'v_proj'], dropout: 0, B: 3, T: 7, recompute: false },
    { name: 'all projections with dropout', targets: ALL, dropout: 0.1, B: 2, T: 13, recompute: false },
    { name: 'q/k/v with recomputation', targets: ['q_proj', 'k_proj', 'v_proj'], dropout: 0, B: 2, T: 9, recompute: true },
    { name: 'all projections, dropout and recomputation', targets: ALL, dropout: 0.1, B: 2, T: 13, recompute: true },
  ])('equals the workspace a real training step allocates ($name)', async ({ targets, dropout, B, T, recompute }) => {
    const gpu = await testGpu();
    const config = tinyConfig({ numLayers: 3 });
    const lora = validateLoraConfig({ r: 3, targets, dropout });
    const before = gpu.bufferAccounting.liveBytes;
    const model = await LlamaModel.load(gpu, memoryWeightsSource(config, tinyWeights(config)));
    const weightBytes = gpu.bufferAccounting.liveBytes - before;
    const adapter = new LoraAdapter(gpu, config, lora);
    try {
      const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 7 + t * 3) % config.vocabSize));
      const batch = makeBatch(ids, ids);
      model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount, recompute });
      await gpu.sync();
      const settings = { lora, batchSize: B, maxLength: T, recompute: recompute ? ('on' as const) : ('off' as const) };
      const estimate = estimateTrainingMemory(config, settings, device(gpu.limits));
      expect(estimate.recompute.on).toBe(recompute);
      expect(model.workspaceBytes).toBeGreaterThan(0);
      expect(estimate.activationBytes).toBe(model.workspaceBytes);
      expect(estimate.weightsBytes).toBe(weightBytes);
    } finally {
      adapter.destroy();
      model.destroy();
    }
  });

  // Every part against the benchmark's accounting of every GPU buffer (memory-only: three steps recorded, none run).
  for (const name of ['stories260K', 'smollm2-135m']) {
    for (const recompute of ['off', 'on'] as const) {
      it(`matches the measured peak of a ${name}-shaped run part by part (recompute ${recompute})`, async () => {
        // SmolLM2 with two of its layers: its widths and its 49k vocabulary, without a gigabyte of random weights.
        const config = { ...parseModelConfig(BUILT_IN_CONFIGS[name]), ...(name === 'stories260K' ? {} : { numLayers: 2 }) };
        const [seq, batch] = name === 'stories260K' ? [64, 3] : [32, 2];
        const result = await runBenchmark(new Gpu(await createNodeDevice()), {
          configName: name,
          config,
          seq,
          batch,
          lora: validateLoraConfig({ r: 4, targets: ['q_proj', 'k_proj', 'v_proj'] }),
          warmup: 0,
          steps: 1,
          memoryOnly: true,
          seed: 1,
          matmulMinMs: 1,
          recompute,
        });
        const { memory } = result;
        expect(result.recompute.on).toBe(recompute === 'on');
        expect(memory.estimate.weights_bytes).toBe(memory.weights_bytes);
        expect(memory.estimate.adapter_and_optimizer_bytes).toBe(memory.adapter_and_optimizer_bytes);
        expect(memory.estimate.activation_bytes).toBe(memory.activation_bytes);
        // The uniform pool is counted at its largest (two 64 KiB blocks); a model with fewer dispatches per submit uses one.
        expect(Math.abs(memory.estimate.other_bytes - memory.other_bytes)).toBeLessThanOrEqual(64 * 1024);
        expect(Math.abs(memory.estimate_bytes - result.peak_memory_bytes)).toBeLessThanOrEqual(64 * 1024);
        expect(Math.abs(memory.estimate_error)).toBeLessThan(0.1);
      });
    }
  }

  it('refuses settings whose buffers exceed the binding limit, saying what to lower', () => {
    const config = tinyConfig({ vocabSize: 50_000, hiddenSize: 64, headDim: 16, numHeads: 4, numKvHeads: 2, intermediateSize: 4096 });
    const lora = validateLoraConfig({ r: 8 });
    const limits = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };
    const small = estimateTrainingMemory(config, { lora, batchSize: 1, maxLength: 64 }, device(limits));
    expect(small.fits).toBe(true);
    expect(small.totalBytes).toBe(
      small.weightsBytes + small.adapterBytes + small.optimizerBytes + small.activationBytes + small.otherBytes,
    );
    // [M, intermediate] activations: 16 x 1024 x 4096 floats = 256 MiB in one buffer.
    const large = estimateTrainingMemory(config, { lora, batchSize: 16, maxLength: 1024 }, device(limits));
    expect(large.fits).toBe(false);
    expect(large.problems.join(' ')).toMatch(/Lower the batch size or the max length/);
    const tooLong = estimateTrainingMemory(config, { lora, batchSize: 1, maxLength: 128 }, device(limits));
    expect(tooLong.problems.join(' ')).toMatch(/longer than the 64 positions/);
  });

  it('16-bit weights take half the bytes; the uploaded size can be given instead', () => {
    const config = tinyConfig();
    const lora = validateLoraConfig({ r: 4 });
    const limits = { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 };
    const settings = { lora, batchSize: 1, maxLength: 8 };
    const f32 = estimateTrainingMemory(config, settings, device(limits));
    const bf16 = estimateTrainingMemory(config, settings, device(limits), 'bf16');
    expect(Math.abs(bf16.weightsBytes - f32.weightsBytes / 2)).toBeLessThan(16 * 60);
    expect(estimateTrainingMemory(config, settings, device(limits), { bytes: 12345 }).weightsBytes).toBe(12345);
  });

  it("auto recomputes when the run would exceed the budget: the user's, a share of the adapter's memory, or 4 GiB", () => {
    const config = tinyConfig({ numLayers: 4, hiddenSize: 64, headDim: 16, numHeads: 4, numKvHeads: 2, intermediateSize: 256 });
    const lora = validateLoraConfig({ r: 4 });
    const limits = { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 };
    const base = { lora, batchSize: 4, maxLength: 64 };
    const off = estimateTrainingMemory(config, { ...base, recompute: 'off' }, device(limits));
    const { withoutBytes, withBytes } = off.recompute;
    expect(withBytes).toBeLessThan(withoutBytes);
    expect(off.totalBytes).toBe(withoutBytes);

    const auto = (memoryBudget: number) => estimateTrainingMemory(config, { ...base, recompute: 'auto', memoryBudget }, device(limits));
    expect(auto(withoutBytes).recompute.on).toBe(false);
    const tight = auto(withoutBytes - 1);
    expect(tight.recompute.on).toBe(true);
    expect(tight.totalBytes).toBe(withBytes);
    expect(tight).toMatchObject({ budget: { bytes: withoutBytes - 1, source: 'setting' }, overBudget: false });
    expect(auto(withBytes - 1)).toMatchObject({ recompute: { on: true }, overBudget: true });
    expect(estimateTrainingMemory(config, { ...base, recompute: 'on' }, device(limits)).recompute.on).toBe(true);
    expect(estimateTrainingMemory(config, { ...base, recompute: 'off', memoryBudget: 1 }, device(limits)).overBudget).toBe(true);

    expect(memoryBudget(null, null)).toEqual({ bytes: DEFAULT_MEMORY_BUDGET_BYTES, source: 'default' });
    expect(memoryBudget(null, 8 * 2 ** 30)).toEqual({ bytes: Math.floor(ADAPTER_MEMORY_SHARE * 8 * 2 ** 30), source: 'adapter' });
    expect(memoryBudget(2 ** 30, 8 * 2 ** 30)).toEqual({ bytes: 2 ** 30, source: 'setting' });
    const heaps = {
      memoryHeaps: [
        { size: 6 * 2 ** 30, properties: 1 },
        { size: 16 * 2 ** 30, properties: 2 },
      ],
    } as unknown as GPUAdapterInfo;
    expect(adapterMemoryBytes(heaps)).toBe(6 * 2 ** 30);
    expect(adapterMemoryBytes({} as GPUAdapterInfo)).toBeNull();
  });
});

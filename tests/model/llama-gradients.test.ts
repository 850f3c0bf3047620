import { describe, expect, it } from 'vitest';
import { Gpu } from '../../src/gpu/context';
import { LoraAdapter } from '../../src/lora/adapter';
import { LORA_TARGETS, type LoraTarget, validateLoraConfig } from '../../src/lora/config';
import { peftTensorName } from '../../src/lora/layout';
import { LlamaModel } from '../../src/model/llama';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { gpuOps } from '../helpers/gpu-ops';
import { randomArray } from '../helpers/numeric';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';
import { FLOAT64_OPS, type OpFamily, referenceLoss } from '../reference/llama';

describe('whole model against a float64 reference (random-init Qwen2-shaped model, all seven targets)', () => {
  const config = tinyConfig();
  const weights = tinyWeights(config);
  const lora = validateLoraConfig({ r: 3, alpha: 5, targets: [...LORA_TARGETS] });
  const inputIds = [
    [1, 5, 9, 22, 3, 36, 17],
    [1, 30, 2, 2, 11, 0, 0],
  ];
  const labels = [
    [-100, -100, 9, 22, 3, 36, 17],
    [-100, 30, 2, 2, 11, -100, -100],
  ];

  /** The adapter with random A and non-zero B, so every gradient path is exercised. */
  const randomAdapter = (gpu: Gpu, loraConfig = lora) => {
    const adapter = new LoraAdapter(gpu, config, loraConfig);
    const init = new Map<string, { shape: number[]; data: Float32Array }>();
    let seed = 100;
    for (const module of adapter.layout.modules) {
      init.set(peftTensorName(module, 'A'), { shape: [3, module.inFeatures], data: randomArray(3 * module.inFeatures, seed++, -0.3, 0.3) });
      init.set(peftTensorName(module, 'B'), {
        shape: [module.outFeatures, 3],
        data: randomArray(3 * module.outFeatures, seed++, -0.3, 0.3),
      });
    }
    adapter.loadTensors(init, 'test');
    return { adapter, init };
  };
  const ref64 = new Map([...weights].map(([k, v]) => [k, Float64Array.from(v)]));

  // All seven, then adapters only from o_proj, gate/up or down_proj on: backward stops below the first one.
  // 'gpu' forces the GPU schedules (tiled attention, workgroup RMSNorm) on this CPU adapter too.
  const cases: { targets: LoraTarget[]; schedules: 'auto' | 'gpu' }[] = [
    ...([[...LORA_TARGETS], ['o_proj'], ['gate_proj', 'up_proj'], ['down_proj']] as LoraTarget[][]).map((targets) => ({
      targets,
      schedules: 'auto' as const,
    })),
    { targets: [...LORA_TARGETS], schedules: 'gpu' },
  ];
  for (const { targets, schedules } of cases) {
    const title = `${schedules} schedules: loss and d loss / d A, d B match central differences of the float64 model`;
    it(`${title} (${targets.join(', ')})`, async () => {
      const gpu = new Gpu((await testGpu()).device);
      gpu.schedules = schedules;
      const model = await LlamaModel.load(gpu, memoryWeightsSource(config, weights));
      const { adapter, init } = randomAdapter(gpu, { ...lora, targets });
      const batch = makeBatch(inputIds, labels);
      model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount });
      const loss = (await model.readLossSum(batch)) / batch.targetCount;
      const grads = await adapter.readGradients();

      const adapter64 = new Map([...init].map(([k, v]) => [k, Float64Array.from(v.data)]));
      const refLoss = () => referenceLoss(config, ref64, adapter64, adapter.scaling, inputIds, labels);
      const reference = await refLoss();
      expect(Math.abs(loss - reference) / reference).toBeLessThan(1e-5);

      const h = 1e-5;
      let checked = 0;
      for (const module of adapter.layout.modules) {
        for (const matrix of ['A', 'B'] as const) {
          const name = peftTensorName(module, matrix);
          const values = adapter64.get(name)!;
          for (const index of [0, Math.floor(values.length / 2) + 1, values.length - 1]) {
            const saved = values[index];
            values[index] = saved + h;
            const plus = await refLoss();
            values[index] = saved - h;
            const minus = await refLoss();
            values[index] = saved;
            const numeric = (plus - minus) / (2 * h);
            const analytic = grads.get(name)!.data[index];
            expect(Math.abs(analytic - numeric), `${name}[${index}]: GPU ${analytic} vs central difference ${numeric}`).toBeLessThan(
              2e-4 + 2e-3 * Math.abs(numeric),
            );
            checked++;
          }
        }
      }
      expect(checked).toBe(adapter.layout.modules.length * 6);
    });
  }

  it('with B = 0 the adapted logits equal the base model logits exactly', async () => {
    const gpu = await testGpu();
    const model = await LlamaModel.load(gpu, memoryWeightsSource(config, weights));
    const adapter = new LoraAdapter(gpu, config, lora);
    adapter.initPeft(42);
    const batch = makeBatch(inputIds);
    const base = await model.lastPositionLogits(batch, null);
    const adapted = await model.lastPositionLogits(batch, adapter);
    expect(Array.from(adapted)).toEqual(Array.from(base));
    // The adapter is really there: a non-zero B changes the logits.
    const tensors = await adapter.readTensors();
    for (const [name, t] of tensors) if (name.includes('lora_B')) t.data.fill(0.1);
    adapter.loadTensors(tensors, 'test');
    const changed = await model.lastPositionLogits(batch, adapter);
    expect(Array.from(changed)).not.toEqual(Array.from(base));
  });

  describe('the float64 model with op families on the GPU (one op at a time, gpu.cpp / llm.c style)', () => {
    const families = Object.keys(FLOAT64_OPS) as OpFamily[];
    const refLoss = async (gpu: Gpu, onGpu: OpFamily[]) => {
      const { adapter, init } = randomAdapter(gpu);
      // Only its tensors and scaling are needed here; its recorded upload goes first.
      gpu.flush();
      adapter.destroy();
      const adapter64 = new Map([...init].map(([k, v]) => [k, Float64Array.from(v.data)]));
      const kernels = gpuOps(gpu);
      const ops = { ...FLOAT64_OPS, ...Object.fromEntries(onGpu.map((family) => [family, kernels[family]])) };
      return referenceLoss(config, ref64, adapter64, adapter.scaling, inputIds, labels, ops);
    };

    for (const family of families) {
      it(`${family}: its kernel alone moves the loss by f32 rounding only`, async () => {
        const gpu = await testGpu();
        const exact = await refLoss(gpu, []);
        const swapped = await refLoss(gpu, [family]);
        expect(Math.abs(swapped - exact) / exact).toBeLessThan(1e-6);
        // The swap took effect: only the embedding lookup (a copy of f32 weights) is exact in f32.
        if (family === 'embedding') expect(swapped).toBe(exact);
        else expect(swapped).not.toBe(exact);
      });
    }

    it('every op family on the GPU: the engine loss, exactly', async () => {
      const gpu = await testGpu();
      const model = await LlamaModel.load(gpu, memoryWeightsSource(config, weights));
      const { adapter } = randomAdapter(gpu);
      const batch = makeBatch(inputIds, labels);
      model.loss(batch, adapter);
      const engine = (await model.readLossSum(batch)) / batch.targetCount;
      const all = await refLoss(gpu, families);
      const exact = await refLoss(gpu, []);
      expect(Math.abs(all - exact) / exact).toBeLessThan(1e-5);
      // LlamaModel records exactly these kernels on the same values in the same order, so its loss
      // is the composed one bit for bit: a difference would mean the engine's wiring differs.
      expect(engine).toBe(all);
    });
  });
});

import { describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../src/lora/adapter';
import { LORA_TARGETS, validateLoraConfig } from '../../src/lora/config';
import { peftTensorName } from '../../src/lora/layout';
import { LlamaModel } from '../../src/model/llama';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';
import { referenceLoss } from '../reference/llama';

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

  it('loss and d loss / d A, d B match central differences of the float64 model', async () => {
    const gpu = await testGpu();
    const model = await LlamaModel.load(gpu, memoryWeightsSource(config, weights));
    const adapter = new LoraAdapter(gpu, config, lora);
    // Non-zero B so every gradient path is exercised.
    const init = new Map<string, { shape: number[]; data: Float32Array }>();
    let seed = 100;
    for (const module of adapter.layout.modules) {
      init.set(peftTensorName(module, 'A'), { shape: [3, module.inFeatures], data: randomArray(3 * module.inFeatures, seed++, -0.3, 0.3) });
      init.set(peftTensorName(module, 'B'), { shape: [module.outFeatures, 3], data: randomArray(3 * module.outFeatures, seed++, -0.3, 0.3) });
    }
    adapter.loadTensors(init, 'test');
    const batch = makeBatch(inputIds, labels);
    model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount });
    const loss = (await model.readLossSum(batch)) / batch.targetCount;
    const grads = await adapter.readGradients();

    const ref64 = new Map([...weights].map(([k, v]) => [k, Float64Array.from(v)]));
    const adapter64 = new Map([...init].map(([k, v]) => [k, Float64Array.from(v.data)]));
    const refLoss = () => referenceLoss(config, ref64, adapter64, adapter.scaling, inputIds, labels);
    expect(Math.abs(loss - refLoss()) / refLoss()).toBeLessThan(1e-5);

    const h = 1e-5;
    let checked = 0;
    for (const module of adapter.layout.modules) {
      for (const matrix of ['A', 'B'] as const) {
        const name = peftTensorName(module, matrix);
        const values = adapter64.get(name)!;
        for (const index of [0, Math.floor(values.length / 2) + 1, values.length - 1]) {
          const saved = values[index];
          values[index] = saved + h;
          const plus = refLoss();
          values[index] = saved - h;
          const minus = refLoss();
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
});

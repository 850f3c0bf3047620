import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context';
import { LoraAdapter } from '../../src/lora/adapter';
import { type LoraTarget, validateLoraConfig } from '../../src/lora/config';
import { peftTensorName } from '../../src/lora/layout';
import type { ModelConfig } from '../../src/model/config';
import { LlamaModel } from '../../src/model/llama';
import type { RawTensor, WeightPrecision } from '../../src/model/weight-format';
import { expectedTensorShapes } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { memoryWeightsSource, tinyConfig } from '../helpers/tiny-model';
import { referenceLoss } from '../reference/llama';
import { roundTo } from '../reference/weight-rounding';

/**
 * Decoder layers at the real widths of SmolLM2-135M (two layers) and of Qwen2.5-0.5B (one, with
 * q/k/v biases; SwiftShader needs seconds per pass at its widths), with small vocabularies, stored
 * BF16 as the hub ships them: the engine keeps them BF16 on the GPU and the float64 reference model
 * reads the same BF16 values.
 */
const SMOLLM2: ModelConfig = tinyConfig({
  architecture: 'llama',
  hiddenSize: 576,
  intermediateSize: 1536,
  numHeads: 9,
  numKvHeads: 3,
  headDim: 64,
  vocabSize: 67,
  rmsNormEps: 1e-5,
  ropeTheta: 100000,
  tieWordEmbeddings: true,
  qkvBias: false,
});
const QWEN25: ModelConfig = tinyConfig({
  architecture: 'qwen2',
  hiddenSize: 896,
  intermediateSize: 4864,
  numHeads: 14,
  numKvHeads: 2,
  headDim: 64,
  numLayers: 1,
  vocabSize: 71,
  rmsNormEps: 1e-6,
  ropeTheta: 1000000,
  tieWordEmbeddings: true,
  qkvBias: true,
});

/**
 * Llama 3 RoPE scaling at small widths: with head_dim 16 and an original context of 64, pair 0 keeps
 * its frequency, pair 1 is blended and pairs 2..7 are divided by the factor.
 */
const LLAMA3_SCALED: ModelConfig = tinyConfig({
  architecture: 'llama',
  hiddenSize: 64,
  intermediateSize: 96,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  vocabSize: 61,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
  tieWordEmbeddings: true,
  qkvBias: false,
});

/** Random weights with unit-variance activations (matrices scaled by 1 / sqrt(fan-in)), rounded to bf16. */
function bf16Weights(config: ModelConfig, seed: number): Map<string, Float64Array> {
  const weights = new Map<string, Float64Array>();
  let s = seed;
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (name.endsWith('norm.weight')) values = randomArray(n, s++, 0.8, 1.2);
    else if (name.endsWith('.bias')) values = randomArray(n, s++, -0.2, 0.2);
    else if (name === 'model.embed_tokens.weight') values = randomArray(n, s++, -1, 1);
    else values = randomArray(n, s++, -Math.sqrt(3 / shape[1]), Math.sqrt(3 / shape[1]));
    weights.set(
      name,
      Float64Array.from(values, (v) => roundTo('bf16', v)),
    );
  }
  return weights;
}

/** The checkpoint: every tensor BF16 (norms and biases too, as in the real files). */
function bf16Checkpoint(weights: Map<string, Float64Array>): Map<string, RawTensor> {
  const raw = new Map<string, RawTensor>();
  for (const [name, values] of weights) {
    const bits = new Uint32Array(Float32Array.from(values).buffer);
    raw.set(name, { dtype: 'BF16', bytes: new Uint8Array(Uint16Array.from(bits, (b) => b >>> 16).buffer) });
  }
  return raw;
}

const inputIds = [
  [1, 5, 9, 22, 3, 36, 17],
  [1, 30, 2, 2, 11, 0, 0],
];
const labels = [
  [-100, -100, 9, 22, 3, 36, 17],
  [-100, 30, 2, 2, 11, -100, -100],
];
const R = 3;

function randomAdapter(gpu: Gpu, config: ModelConfig, targets: LoraTarget[]) {
  const lora = validateLoraConfig({ r: R, alpha: 5, targets });
  const adapter = new LoraAdapter(gpu, config, lora);
  const init = new Map<string, { shape: number[]; data: Float32Array }>();
  let seed = 300;
  for (const module of adapter.layout.modules) {
    const bound = 1 / Math.sqrt(module.inFeatures);
    init.set(peftTensorName(module, 'A'), {
      shape: [R, module.inFeatures],
      data: randomArray(R * module.inFeatures, seed++, -bound, bound),
    });
    init.set(peftTensorName(module, 'B'), { shape: [module.outFeatures, R], data: randomArray(R * module.outFeatures, seed++, -0.3, 0.3) });
  }
  adapter.loadTensors(init, 'test');
  return { adapter, init };
}

async function engineLossAndGrads(
  config: ModelConfig,
  checkpoint: Map<string, RawTensor>,
  targets: LoraTarget[],
  precision: WeightPrecision,
) {
  const gpu = await testGpu();
  const model = await LlamaModel.load(gpu, memoryWeightsSource(config, checkpoint), { precision });
  const { adapter, init } = randomAdapter(gpu, config, targets);
  const batch = makeBatch(inputIds, labels);
  model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount });
  const loss = (await model.readLossSum(batch)) / batch.targetCount;
  const grads = await adapter.readGradients();
  const precisionHeld = model.precision;
  adapter.destroy();
  model.destroy();
  return { loss, grads, init, scaling: adapter.scaling, precision: precisionHeld };
}

const CASES = [
  {
    name: 'SmolLM2-135M widths (576, GQA 9:3, head_dim 64), all seven targets',
    config: SMOLLM2,
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as LoraTarget[],
    probes: [
      'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
      'base_model.model.model.layers.1.mlp.down_proj.lora_B.weight',
    ],
  },
  {
    name: 'Qwen2.5-0.5B widths (896, GQA 14:2, q/k/v biases, intermediate 4864), one layer, q/k/v',
    config: QWEN25,
    targets: ['q_proj', 'k_proj', 'v_proj'] as LoraTarget[],
    probes: [
      'base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight',
      'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight',
    ],
  },
  {
    name: 'Llama 3 RoPE scaling (llama3, all three frequency bands), q/k/v/o',
    config: LLAMA3_SCALED,
    targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as LoraTarget[],
    probes: [
      'base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight',
      'base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight',
    ],
  },
];

describe('models stored BF16 (real layouts, Llama 3 RoPE scaling) against the float64 reference model', () => {
  for (const { name, config, targets, probes } of CASES) {
    it(`${name}: loss and gradients; bf16 on the GPU gives the f32 upload's results bit for bit`, async () => {
      const weights = bf16Weights(config, 41);
      const checkpoint = bf16Checkpoint(weights);
      const bf16 = await engineLossAndGrads(config, checkpoint, targets, 'auto');
      expect(bf16.precision).toBe('bf16');

      const adapter64 = new Map([...bf16.init].map(([k, v]) => [k, Float64Array.from(v.data)]));
      const refLoss = () => referenceLoss(config, weights, adapter64, bf16.scaling, inputIds, labels);
      const reference = await refLoss();
      expect(Math.abs(bf16.loss - reference) / reference).toBeLessThan(1e-5);
      if (config.ropeScaling) {
        // The scaling matters to this model: without it the reference loss is measurably different.
        const unscaled = await referenceLoss({ ...config, ropeScaling: null }, weights, adapter64, bf16.scaling, inputIds, labels);
        expect(Math.abs(unscaled - reference) / reference).toBeGreaterThan(1e-3);
      }

      const h = 1e-4;
      for (const probe of probes) {
        const values = adapter64.get(probe)!;
        const index = values.length - 1;
        const saved = values[index];
        values[index] = saved + h;
        const plus = await refLoss();
        values[index] = saved - h;
        const minus = await refLoss();
        values[index] = saved;
        const numeric = (plus - minus) / (2 * h);
        const analytic = bf16.grads.get(probe)!.data[index];
        expect(Math.abs(analytic - numeric), `${probe}[${index}]: GPU ${analytic} vs central difference ${numeric}`).toBeLessThan(
          2e-4 + 2e-3 * Math.abs(numeric),
        );
      }

      // The same values widened to f32 on upload: the kernels read identical numbers, so the
      // 16-bit path may not differ from the f32 one at all.
      const f32 = await engineLossAndGrads(config, checkpoint, targets, 'f32');
      expect(f32.precision).toBe('f32');
      expect(bf16.loss).toBe(f32.loss);
      for (const [tensor, grad] of f32.grads) expect(Array.from(bf16.grads.get(tensor)!.data), tensor).toEqual(Array.from(grad.data));
    });
  }
});

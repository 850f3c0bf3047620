/**
 * A quantized GGUF base under precision 'auto' keeps its blocks on the GPU (q8_0, q4_0, q5_0, q5_1, q4_k,
 * q5_k, q6_k) and gives what the same file gives dequantized to f32 on the CPU (`--weights f32`):
 * the logits of the last positions, the loss (lm_head in its block format inside the cross-entropy)
 * and the LoRA gradients (dY W through every frozen matrix). Only the order of f32 operations
 * differs, so the bound is 1e-4 relative. Nothing is downloaded: stories260K from ../shared in a mix
 * of 32-value formats, and a random 256-wide llama in K-quants.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { deviceMemory, estimateTrainingMemory } from '../../src/app/memory';
import { memoryByteSource } from '../../src/gguf/byte-source';
import type { GgmlTypeName } from '../../src/gguf/ggml-types';
import { ggufModelParts } from '../../src/gguf/model-writer';
import { openGgufModel } from '../../src/gguf/weights';
import { LoraAdapter } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { peftTensorName } from '../../src/lora/layout';
import { matrixFormatsOf } from '../../src/model/gpu-weights';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { type OpenedModel, openModel } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { STORIES_260K } from '../helpers/paths';
import { collectParts } from './helpers';
import { llamaCppMix } from '../../src/gguf/quant-mix';
import { kQuantModel, type ModelSpec, storiesSpec, useStoriesTokenizer } from './quantized-models';

let stories: OpenedModel;
beforeAll(async () => {
  stories = await openModel(nodeFileSource(STORIES_260K));
  useStoriesTokenizer(storiesSpec(stories).tokenizer);
});

/** Largest |a - b| over the largest |b|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

/** Logits of the last positions, the mean loss and the LoRA gradients of one batch, with the weights uploaded in `precision`. */
async function run(spec: ModelSpec, file: Uint8Array, precision: 'auto' | 'f32') {
  const gpu = await testGpu();
  const opened = await openGgufModel(memoryByteSource(file, 'model.gguf'));
  const before = gpu.bufferAccounting.liveBytes;
  const model = await LlamaModel.load(gpu, opened.weights, { precision });
  const uploaded = gpu.bufferAccounting.liveBytes - before;
  const settings = { lora: validateLoraConfig({ r: 3, targets: ['q_proj'] }), batchSize: 1, maxLength: 8 };
  const estimated = estimateTrainingMemory(
    spec.config,
    settings,
    deviceMemory(gpu),
    matrixFormatsOf(opened.weights, precision),
  ).weightsBytes;
  const adapter = new LoraAdapter(gpu, spec.config, {
    r: 3,
    alpha: 6,
    dropout: 0,
    targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'],
    useRslora: false,
  });
  try {
    let seed = 200;
    const init = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const module of adapter.layout.modules) {
      init.set(peftTensorName(module, 'A'), { shape: [3, module.inFeatures], data: randomArray(3 * module.inFeatures, seed++, -0.3, 0.3) });
      init.set(peftTensorName(module, 'B'), {
        shape: [module.outFeatures, 3],
        data: randomArray(3 * module.outFeatures, seed++, -0.3, 0.3),
      });
    }
    adapter.loadTensors(init, 'test');
    const V = spec.config.vocabSize;
    const ids = [0, 1].map((row) => Array.from({ length: 7 }, (_, t) => (row * 131 + t * 37 + 5) % V));
    const batch = makeBatch(ids, ids);
    const logits = await model.lastPositionLogits(batch, adapter);
    model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount });
    const loss = (await model.readLossSum(batch)) / batch.targetCount;
    const grads = await adapter.readGradients();
    const matrices = model.weights.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].map((m) => m.format));
    return {
      uploaded,
      estimated,
      logits,
      loss,
      grads,
      formats: new Set([...matrices, model.weights.lmHead.format, model.weights.embedding.format]),
    };
  } finally {
    adapter.destroy();
    model.destroy();
  }
}

const cases: { label: string; spec: () => ModelSpec; typeFor: (name: string, shape: readonly number[]) => GgmlTypeName; gpu: string[] }[] =
  [
    {
      label: 'stories260K in Q8_0 (token_embd, attn_v), Q4_0 (attn_q, ffn_up), Q5_0 (attn_k, attn_output), Q5_1 ffn_gate, F16 ffn_down',
      spec: () => storiesSpec(stories),
      typeFor: (name) =>
        /attn_v|token_embd/.test(name)
          ? 'Q8_0'
          : /attn_q|ffn_up/.test(name)
            ? 'Q4_0'
            : /attn_k|attn_output/.test(name)
              ? 'Q5_0'
              : name.includes('ffn_gate')
                ? 'Q5_1'
                : name.includes('ffn_down')
                  ? 'F16'
                  : 'F32',
      gpu: ['q8_0', 'q4_0', 'q5_0', 'q5_1', 'f16'],
    },
    {
      label: "stories260K as llama-quantize's Q4_K_M leaves it (Q5_0, Q8_0, F16)",
      spec: () => storiesSpec(stories),
      typeFor: (name, shape) => llamaCppMix('Q4_K_M', stories.config)(name, shape),
      gpu: ['q8_0', 'q5_0', 'f16'],
    },
    {
      label: 'random 256-wide llama: Q4_K, Q6_K (attn_v, ffn_down, output), Q5_K (attn_output), Q8_0 token_embd',
      spec: kQuantModel,
      typeFor: (name) =>
        /attn_v|ffn_down|^output\./.test(name)
          ? 'Q6_K'
          : name.includes('attn_output')
            ? 'Q5_K'
            : name === 'token_embd.weight'
              ? 'Q8_0'
              : 'Q4_K',
      gpu: ['q4_k', 'q6_k', 'q5_k', 'q8_0'],
    },
  ];

describe('quantized GGUF weights on the GPU', () => {
  for (const c of cases) {
    it(`${c.label}: block formats on the GPU give the logits, loss and LoRA gradients of CPU dequantization to f32`, async () => {
      const spec = c.spec();
      const file = await collectParts(ggufModelParts({ ...spec, type: 'F32', typeFor: c.typeFor }));
      const blocks = await run(spec, file, 'auto');
      const f32 = await run(spec, file, 'f32');
      expect([...blocks.formats].sort()).toEqual([...c.gpu].sort());
      expect([...f32.formats]).toEqual(['f32']);
      // The memory estimate counts the blocks as the upload allocates them.
      expect(blocks.estimated).toBe(blocks.uploaded);
      expect(f32.estimated).toBe(f32.uploaded);
      console.info(`${c.label}: weights on the GPU ${blocks.uploaded} bytes as blocks, ${f32.uploaded} as f32`);
      const logitsError = relativeError(blocks.logits, f32.logits);
      const lossError = Math.abs(blocks.loss - f32.loss) / f32.loss;
      let gradError = 0;
      for (const [name, g] of f32.grads) gradError = Math.max(gradError, relativeError(blocks.grads.get(name)!.data, g.data));
      console.info(
        `${c.label}: logits ${logitsError.toExponential(2)}, loss ${lossError.toExponential(2)}, gradients ${gradError.toExponential(2)}`,
      );
      expect(logitsError).toBeLessThan(1e-4);
      expect(lossError).toBeLessThan(1e-4);
      expect(gradError).toBeLessThan(1e-4);
    });
  }
});

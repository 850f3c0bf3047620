import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/context';
import { LoraAdapter } from '../../src/lora/adapter';
import { LORA_TARGETS, type LoraTarget, validateLoraConfig } from '../../src/lora/config';
import { peftTensorName } from '../../src/lora/layout';
import { LlamaModel } from '../../src/model/llama';
import type { Workspace } from '../../src/model/workspace';
import { backwardReads, planBufferSizes, planCovers, planWorkspace } from '../../src/model/workspace-plan';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';

const config = tinyConfig({ numLayers: 3 });
const weights = tinyWeights(config);
const inputIds = [
  [1, 5, 9, 22, 3, 36, 17],
  [1, 30, 2, 2, 11, 0, 0],
];
const labels = [
  [-100, -100, 9, 22, 3, 36, 17],
  [-100, 30, 2, 2, 11, -100, -100],
];

/** Target sets whose backward stops at different depths of the first layer, with and without dropout. */
const SETS: { name: string; targets: LoraTarget[]; dropout: number }[] = [
  { name: 'q/k/v', targets: ['q_proj', 'k_proj', 'v_proj'], dropout: 0 },
  { name: 'q/v with dropout', targets: ['q_proj', 'v_proj'], dropout: 0.2 },
  { name: 'o_proj with dropout', targets: ['o_proj'], dropout: 0.1 },
  { name: 'gate/up', targets: ['gate_proj', 'up_proj'], dropout: 0 },
  { name: 'down_proj', targets: ['down_proj'], dropout: 0 },
  { name: 'all seven', targets: [...LORA_TARGETS], dropout: 0 },
];

/** A random adapter (non-zero B, so every gradient path carries signal). */
function randomAdapter(gpu: Gpu, targets: LoraTarget[], dropout: number): LoraAdapter {
  const adapter = new LoraAdapter(gpu, config, validateLoraConfig({ r: 3, alpha: 5, targets, dropout }));
  const init = new Map<string, { shape: number[]; data: Float32Array }>();
  let seed = 200;
  for (const module of adapter.layout.modules) {
    const a = { shape: [3, module.inFeatures], data: randomArray(3 * module.inFeatures, seed++, -0.3, 0.3) };
    init.set(peftTensorName(module, 'A'), a);
    init.set(peftTensorName(module, 'B'), { shape: [module.outFeatures, 3], data: randomArray(3 * module.outFeatures, seed++, -0.3, 0.3) });
  }
  adapter.loadTensors(init, 'test');
  return adapter;
}

const poison = (gpu: Gpu, buffer: GPUBuffer) => gpu.write(buffer, new Float32Array(buffer.size / 4).fill(Number.NaN));

/** Every gradient element, flattened in PEFT-name order. */
async function gradients(adapter: LoraAdapter): Promise<number[]> {
  const grads = await adapter.readGradients();
  return [...grads.keys()].sort().flatMap((name) => Array.from(grads.get(name)!.data));
}

describe('the workspace plan keeps exactly what backward reads', () => {
  it('without MLP adapters, n2 and act live in the scratch set; gate and up stay, for the SwiGLU backward', () => {
    const plan = planWorkspace(config, 14, 'train', { r: 3, targets: ['q_proj', 'k_proj', 'v_proj'], dropout: 0 });
    for (const l of [1, 2]) {
      expect(plan.kept[l].has('n2') || plan.kept[l].has('act')).toBe(false);
      for (const key of ['gate', 'up', 'h', 'n1', 'qkv', 'attn', 'u qkv'] as const) expect(plan.kept[l].has(key)).toBe(true);
    }
    // Nothing lies below the first layer's q/k/v: its input gradient, input_layernorm's backward and its input are not needed.
    expect(plan.kept[0].has('rstd1')).toBe(false);
    expect(plan.keptStreams).toEqual([false, true, true, true]);
    // With dropout the adapters read drop(x), not x.
    const dropped = backwardReads(['q_proj', 'v_proj'], true, 1);
    expect(dropped.has('n1')).toBe(false);
    expect(dropped.has('xDrop q_proj')).toBe(true);
    // An adapter only on down_proj: the first layer's backward reads its u and act, nothing else.
    expect([...backwardReads(['down_proj'], false, 0)].sort()).toEqual(['act', 'u down_proj']);
  });

  it('recomputation keeps every layer input and one scratch set; both training plans cover inference, not each other', () => {
    const lora = { r: 3, targets: ['q_proj', 'v_proj'] as LoraTarget[], dropout: 0 };
    const keep = planWorkspace(config, 14, 'train', lora);
    const recompute = planWorkspace(config, 14, 'train-recompute', lora);
    const inference = planWorkspace(config, 14, 'inference', lora);
    expect(recompute.kept.every((kept) => kept.size === 0)).toBe(true);
    expect(recompute.keptStreams).toEqual([true, true, true, true]);
    const total = (plan: typeof keep) => planBufferSizes(plan).reduce((a, b) => a + b, 0);
    expect(total(recompute)).toBeLessThan(total(keep));
    expect(planCovers(keep, inference) && planCovers(recompute, inference)).toBe(true);
    // The first layer's input is scratch when nothing is recomputed; the layers' activations are when they are.
    expect(planCovers(keep, recompute) || planCovers(recompute, keep) || planCovers(inference, recompute)).toBe(false);
  });

  for (const set of SETS) {
    it(`${set.name}: poisoning the rest changes no gradient, poisoning any kept buffer changes one`, async () => {
      const gpu = await testGpu();
      const model = await LlamaModel.load(gpu, memoryWeightsSource(config, weights));
      // Every buffer alone: this checks what each layer keeps; workspace-slots.test.ts checks the shared storage.
      model.workspaceAliasing = false;
      const adapter = randomAdapter(gpu, set.targets, set.dropout);
      const batch = makeBatch(inputIds, labels);
      const step = async (beforeBackward?: (ws: Workspace) => void) => {
        adapter.zeroGrads();
        model.lossAndGradients(batch, adapter, { lossScale: 1 / batch.targetCount, dropoutSeed: 9, beforeBackward });
        return gradients(adapter);
      };
      try {
        let ws: Workspace | null = null;
        const clean = await step((w) => {
          ws = w;
        });
        if (!ws) throw new Error('beforeBackward was not called');
        const { own, plan, stream } = ws as Workspace;
        expect(clean.every(Number.isFinite)).toBe(true);
        expect(clean.some((g) => g !== 0)).toBe(true);
        const rest = await step((w) => {
          for (const buffer of [...w.scratch.values(), ...w.scratchStreams]) poison(gpu, buffer);
        });
        expect(rest).toEqual(clean);

        let checked = 0;
        for (let l = 0; l < config.numLayers; l++) {
          for (const [key, buffer] of own[l]) {
            const poisoned = await step(() => poison(gpu, buffer));
            expect(poisoned, `layer ${l} ${key} is kept but backward never reads it`).not.toEqual(clean);
            checked++;
          }
        }
        for (const [i, kept] of plan.keptStreams.entries()) {
          if (!kept) continue;
          expect(await step(() => poison(gpu, stream[i])), `stream ${i} is kept but never read`).not.toEqual(clean);
          checked++;
        }
        expect(checked).toBeGreaterThan(config.numLayers * set.targets.length);
      } finally {
        adapter.destroy();
        model.destroy();
      }
    });
  }
});

import { describe, expect, it } from 'vitest';
import { BUILT_IN_CONFIGS } from '../../src/bench/configs';
import { asRange, type Gpu } from '../../src/gpu/context';
import { LoraAdapter } from '../../src/lora/adapter';
import { LORA_TARGETS, type LoraTarget, validateLoraConfig } from '../../src/lora/config';
import { peftTensorName } from '../../src/lora/layout';
import { type ModelConfig, parseModelConfig } from '../../src/model/config';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel, type ModelWeightsSource } from '../../src/model/weights';
import type { Workspace } from '../../src/model/workspace';
import { type PassKind, planBufferSizes, planCovers, planWorkspace, type WorkspaceLora } from '../../src/model/workspace-plan';
import { lifetime, type Phase, type SingleName, slotsSafeFor } from '../../src/model/workspace-slots';
import { type Batch, makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { STORIES_260K } from '../helpers/paths';
import { memoryWeightsSource, tinyConfig, tinyWeights, tinyMicroBatches } from '../helpers/tiny-model';

const TRAINING: PassKind[] = ['train', 'train-recompute'];
const QKV: LoraTarget[] = ['q_proj', 'k_proj', 'v_proj'];
const total = (sizes: number[]) => sizes.reduce((a, b) => a + b, 0);

describe('the workspace plan shares storage between buffers whose lifetimes never overlap', () => {
  const smol = parseModelConfig(BUILT_IN_CONFIGS['smollm2-135m']);
  const lora: WorkspaceLora = { r: 16, targets: QKV, dropout: 0 };

  it('SmolLM2-135M at 512 x 4 on q/k/v: the forward scratch, the loss scratch and the backward scratch take the same slots', () => {
    const M = 2048;
    const plan = planWorkspace(smol, M, 'train', lora);
    const slotOf = (name: SingleName) => plan.slots.findIndex((slot) => slot.names.includes(name));
    // act dies with the forward, the cross-entropy scratch lives in the loss, dAct is born in backward.
    expect(slotOf('scratch act')).toBe(slotOf('ceScratch'));
    expect(slotOf('dAct')).toBe(slotOf('ceScratch'));
    // The cross-entropy scratch is sized to that slot: [M, intermediate] floats, so 1536 vocabulary rows per chunk.
    expect(plan.ceChunk).toBe(smol.intermediateSize);
    expect(plan.slots[slotOf('ceScratch')].floats).toBe(M * smol.intermediateSize);
    for (const name of ['scratch n2', 'stream scratch 0', 'branch', 'nFinal', 'dStream', 'dNorm', 'dq', 'dAttn'] as const) {
      expect(plan.slots[slotOf(name)].names.length, name).toBeGreaterThan(1);
    }
    // Without aliasing: every buffer its own slot, the same cross-entropy chunk, and 44 MB more.
    const apart = planWorkspace(smol, M, 'train', lora, { aliasing: false });
    expect(apart.slots.every((slot) => slot.names.length === 1)).toBe(true);
    expect(apart.ceChunk).toBe(plan.ceChunk);
    expect(total(planBufferSizes(apart)) - total(planBufferSizes(plan))).toBeGreaterThan(40e6);
  });

  it('with recomputation the scratch set lives in every phase and shares nothing; the loss scratch still shares', () => {
    const plan = planWorkspace(smol, 2048, 'train-recompute', lora);
    for (const slot of plan.slots) {
      if (slot.names.some((name) => name.startsWith('scratch '))) expect(slot.names).toHaveLength(1);
    }
    const ce = plan.slots.find((slot) => slot.names.includes('ceScratch'))!;
    expect(ce.names).toContain('dAct');
    expect(ce.floats).toBe(2048 * smol.intermediateSize);
  });

  it('every slot is safe for its pass and for the passes a workspace it covers runs', () => {
    const config = tinyConfig({ numLayers: 3 });
    for (const targets of [QKV, ['down_proj'] as LoraTarget[], [...LORA_TARGETS]]) {
      for (const dropout of [0, 0.1]) {
        const plans = (['inference', ...TRAINING] as PassKind[]).map((pass) => planWorkspace(config, 14, pass, { r: 3, targets, dropout }));
        for (const plan of plans) expect(slotsSafeFor(plan.slots, plan.pass)).toBe(true);
        // A training workspace serves evaluation between steps: its slots are safe at inference too.
        for (const have of plans.slice(1)) expect(planCovers(have, plans[0])).toBe(true);
      }
    }
    const shared = planWorkspace(config, 14, 'train', { r: 3, targets: QKV, dropout: 0 });
    const apart = planWorkspace(config, 14, 'train', { r: 3, targets: QKV, dropout: 0 }, { aliasing: false });
    expect(planCovers(apart, shared)).toBe(true);
    expect(planCovers(shared, apart)).toBe(false);
  });
});

/** A random adapter with non-zero B, so every gradient path carries signal. */
function randomAdapter(gpu: Gpu, config: ModelConfig, targets: LoraTarget[], dropout: number): LoraAdapter {
  const adapter = new LoraAdapter(gpu, config, validateLoraConfig({ r: 3, alpha: 5, targets, dropout }));
  const init = new Map<string, { shape: number[]; data: Float32Array }>();
  let seed = 500;
  for (const module of adapter.layout.modules) {
    init.set(peftTensorName(module, 'A'), { shape: [3, module.inFeatures], data: randomArray(3 * module.inFeatures, seed++, -0.3, 0.3) });
    init.set(peftTensorName(module, 'B'), {
      shape: [module.outFeatures, 3],
      data: randomArray(3 * module.outFeatures, seed++, -0.1, 0.1),
    });
  }
  adapter.loadTensors(init, 'test');
  return adapter;
}

const poison = (gpu: Gpu, buffer: GPUBuffer) => gpu.write(buffer, new Float32Array(buffer.size / 4).fill(Number.NaN));

/** True when a value of `name` crosses from phase `a` into the next phase `b` (both in its lifetime). */
const crosses = (name: SingleName, pass: PassKind, a: Phase, b: Phase) =>
  lifetime(name, pass).includes(a) && lifetime(name, pass).includes(b);

interface StepHooks {
  afterForward?: (ws: Workspace) => void;
  beforeBackward?: (ws: Workspace) => void;
  /** Before each micro-batch after the first (the workspace exists then). */
  beforeStep?: (ws: Workspace) => void;
}

/** Loss and gradients of the micro-batches accumulated into one step, then the evaluation loss of the first batch. */
async function step(model: LlamaModel, adapter: LoraAdapter, batches: Batch[], recompute: boolean, hooks: StepHooks = {}) {
  adapter.zeroGrads();
  const targets = batches.reduce((sum, b) => sum + b.targetCount, 0);
  let loss = 0;
  let ws: Workspace | null = null;
  for (const [i, batch] of batches.entries()) {
    if (ws && hooks.beforeStep) hooks.beforeStep(ws);
    const afterForward = (w: Workspace) => {
      ws = w;
      hooks.afterForward?.(w);
    };
    const beforeBackward = hooks.beforeBackward;
    model.lossAndGradients(batch, adapter, { lossScale: 1 / targets, dropoutSeed: 70 + i, recompute, afterForward, beforeBackward });
    loss += await model.readLossSum(batch);
  }
  const grads = await adapter.readGradients();
  // Evaluation on the training workspace (no dropout, no backward).
  model.loss(batches[0], adapter);
  const evalLoss = await model.readLossSum(batches[0]);
  return { loss, evalLoss, grads: [...grads.keys()].sort().map((name) => [name, Array.from(grads.get(name)!.data)]) };
}

/**
 * The single buffers each dispatch of one training step binds, by phase, from a workspace without
 * aliasing (so each buffer is one name); and whether any dispatch binds overlapping ranges of one
 * buffer (two names of one slot do; q, k and v, ranges of one layer buffer, do not).
 */
async function phasesOfUse(model: LlamaModel, adapter: LoraAdapter, batch: Batch, recompute: boolean) {
  const gpu = model.gpu;
  let phase: Phase = 'forward';
  const uses: { phase: Phase; buffers: GPUBuffer[] }[] = [];
  let doubleBound = false;
  let ws: Workspace | null = null;
  const stop = gpu.observeDispatches((d) => {
    const ranges = Object.values(d.bindings).flatMap((b) => (b ? [asRange(b)] : []));
    const overlap = (a: (typeof ranges)[0], b: (typeof ranges)[0]) =>
      a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
    if (ranges.some((a, i) => ranges.slice(i + 1).some((b) => overlap(a, b)))) doubleBound = true;
    uses.push({ phase, buffers: ranges.map((r) => r.buffer) });
  });
  try {
    model.lossAndGradients(batch, adapter, {
      lossScale: 1 / batch.targetCount,
      recompute,
      afterForward: (w) => {
        ws = w;
        phase = 'loss';
      },
      beforeBackward: () => {
        phase = 'backward';
      },
    });
    await gpu.sync();
  } finally {
    stop();
  }
  const workspace = ws as unknown as Workspace;
  const names = new Map(workspace.plan.slots.map((slot, i) => [workspace.slots[i], slot.names]));
  const phases = new Map<SingleName, Set<Phase>>();
  for (const { phase: p, buffers } of uses) {
    for (const buffer of buffers) for (const name of names.get(buffer) ?? []) phases.set(name, (phases.get(name) ?? new Set()).add(p));
  }
  return { phases, doubleBound, dispatches: uses.length };
}

async function expectExactSharing(
  source: ModelWeightsSource,
  targets: LoraTarget[],
  dropout: number,
  batches: Batch[],
  recompute: boolean,
) {
  const gpu = await testGpu();
  const model = await LlamaModel.load(gpu, source);
  const adapter = randomAdapter(gpu, source.config, targets, dropout);
  const pass: PassKind = recompute ? 'train-recompute' : 'train';
  try {
    // Every buffer alone: each is bound only in phases of its lifetime, and never twice in one dispatch.
    model.workspaceAliasing = false;
    const alone = await phasesOfUse(model, adapter, batches[0], recompute);
    expect(alone.phases.size).toBeGreaterThan(10);
    for (const [name, phases] of alone.phases) {
      for (const phase of phases) expect(lifetime(name, pass), `${name} is used in ${phase}`).toContain(phase);
    }
    expect(alone.doubleBound).toBe(false);
    const reference = await step(model, adapter, batches, recompute);
    model.releaseWorkspace();

    model.workspaceAliasing = true;
    const shared = await phasesOfUse(model, adapter, batches[0], recompute);
    expect(shared.dispatches).toBe(alone.dispatches);
    expect(shared.doubleBound).toBe(false);
    const clean = await step(model, adapter, batches, recompute);
    expect(clean.loss).toBeGreaterThan(0);
    expect(clean).toEqual(reference);
    expect(clean.grads.flatMap(([, g]) => g as number[]).some((g) => g !== 0)).toBe(true);

    // NaN into every slot at each phase boundary that none of its names' values crosses, and into the
    // whole workspace between micro-batches: the same loss and gradients, bit for bit.
    const poisoned = new Map<Phase, number>();
    const boundary = (a: Phase, b: Phase) => (w: Workspace) => {
      w.plan.slots.forEach((slot, i) => {
        if (slot.names.some((name) => crosses(name, pass, a, b))) return;
        poison(gpu, w.slots[i]);
        poisoned.set(a, (poisoned.get(a) ?? 0) + 1);
      });
    };
    const everything = (w: Workspace) => {
      for (const buffer of [...w.slots, ...w.own.flatMap((own) => [...own.values()]), ...w.stream]) poison(gpu, buffer);
    };
    const hooks = { afterForward: boundary('forward', 'loss'), beforeBackward: boundary('loss', 'backward'), beforeStep: everything };
    expect(await step(model, adapter, batches, recompute, hooks)).toEqual(clean);
    expect(poisoned.get('forward')).toBeGreaterThan(0);
    expect(poisoned.get('loss')).toBeGreaterThan(0);
  } finally {
    adapter.destroy();
    model.destroy();
  }
}

describe('shared storage gives the same loss and gradients bit for bit', () => {
  const config = tinyConfig({ numLayers: 3 });
  const source = memoryWeightsSource(config, tinyWeights(config));
  const batches = tinyMicroBatches();
  const SETS: { name: string; targets: LoraTarget[]; dropout: number }[] = [
    { name: 'q/k/v', targets: QKV, dropout: 0 },
    { name: 'q/v with dropout', targets: ['q_proj', 'v_proj'], dropout: 0.2 },
    { name: 'o_proj with dropout', targets: ['o_proj'], dropout: 0.1 },
    { name: 'gate/up', targets: ['gate_proj', 'up_proj'], dropout: 0 },
    { name: 'down_proj', targets: ['down_proj'], dropout: 0 },
    { name: 'all seven with dropout', targets: [...LORA_TARGETS], dropout: 0.1 },
  ];
  for (const recompute of [false, true]) {
    for (const set of SETS) {
      it(`tiny model, ${set.name}, recomputation ${recompute ? 'on' : 'off'}`, async () => {
        await expectExactSharing(source, set.targets, set.dropout, batches, recompute);
      });
    }
  }

  it.each([false, true])('stories260K, q/k/v, recomputation %s', async (recompute) => {
    const { weights } = await openModel(nodeFileSource(STORIES_260K));
    const T = 40;
    const rows = [0, 1, 2].map((b) => Array.from({ length: T }, (_, t) => (b * 131 + t * 37 + 1) % weights.config.vocabSize));
    await expectExactSharing(
      weights,
      QKV,
      0,
      [makeBatch(rows.slice(0, 2), rows.slice(0, 2)), makeBatch(rows.slice(2), rows.slice(2))],
      recompute,
    );
  });
});

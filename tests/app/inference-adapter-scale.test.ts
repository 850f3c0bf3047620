import { beforeAll, describe, expect, it } from 'vitest';
import type { AdapterTensors } from '../../src/export/adapter';
import { LoraWeights } from '../../src/lora/adapter';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { EngineStateError } from '../../src/app/engine';
import { expectRefusal, goldenAdapter } from '../export/helpers';
import { testGpu } from '../helpers/gpu';
import { STORIES_260K } from '../helpers/paths';
import { engineWithStories, peftZip } from './fixtures';

/** "Once upon a time, there was a little" and a few more stories260K tokens. */
const IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395];

let golden: AdapterTensors;
beforeAll(async () => {
  golden = await goldenAdapter();
});

function withScaledB(adapter: AdapterTensors, factor: number): AdapterTensors {
  const tensors = new Map(
    [...adapter.tensors].map(([name, t]) => [
      name,
      name.endsWith('.lora_B.weight') ? { shape: t.shape, data: t.data.map((v) => v * factor) } : t,
    ]),
  );
  return { config: adapter.config, tensors };
}

function worstRelative(actual: Float32Array, expected: Float32Array): number {
  const scale = Math.max(...Array.from(expected, Math.abs));
  return Math.max(...Array.from(expected, (v, i) => Math.abs(actual[i] - v) / scale));
}

describe('adapter scale', () => {
  it('scales the LoRA term of the logits: 0 gives the base exactly, 1 the adapter, 0.5 the adapter with B halved', async () => {
    const gpu = await testGpu();
    const opened = await openModel(nodeFileSource(STORIES_260K));
    const model = await LlamaModel.load(gpu, opened.weights);
    const lora = LoraWeights.fromTensors(gpu, opened.config, golden.config, golden.tensors, 'golden');
    const halved = withScaledB(golden, 0.5);
    const loraHalvedB = LoraWeights.fromTensors(gpu, opened.config, halved.config, halved.tensors, 'golden, B halved');
    const batch = makeBatch([IDS]);

    const base = await model.lastPositionLogits(batch, null);
    const adapted = await model.lastPositionLogits(batch, lora);
    expect(worstRelative(adapted, base)).toBeGreaterThan(1e-3);
    expect(await model.lastPositionLogits(batch, lora.scaledBy(0))).toEqual(base);
    expect(await model.lastPositionLogits(batch, lora.scaledBy(1))).toEqual(adapted);
    const half = await model.lastPositionLogits(batch, lora.scaledBy(0.5));
    expect(worstRelative(half, await model.lastPositionLogits(batch, loraHalvedB))).toBeLessThan(1e-5);
    expect(worstRelative(half, adapted)).toBeGreaterThan(1e-4);
    // The view shares the weights: the adapter itself still applies scale 1.
    expect(await model.lastPositionLogits(batch, lora)).toEqual(adapted);
  });

  it('applies per generate call without changing the stored adapter', async () => {
    const { engine } = await engineWithStories();
    const { id } = await engine.importAdapter(peftZip(golden, 'golden.zip'));
    // Greedy text of this adapter changes visibly at 4x (at 0.5x it matches scale 1 for these tokens).
    const { id: quadrupledId } = await engine.importAdapter(peftZip(withScaledB(golden, 4), 'quadrupled.zip'));
    const request = { prompt: 'Once upon a time, there was a little', maxNewTokens: 12, temperature: 0 };
    const text = async (adapterId: string | null, adapterScale?: number) =>
      (await engine.generate({ ...request, adapterId, adapterScale })).text;

    const base = await text(null);
    const adapted = await text(id);
    expect(adapted).not.toBe(base);
    expect(await text(id, 0)).toBe(base);
    expect(await text(id, 1)).toBe(adapted);
    const strong = await text(id, 4);
    expect(strong).toBe(await text(quadrupledId));
    expect(strong).not.toBe(adapted);
    // Scaling did not touch the cached or stored weights.
    expect(await text(id)).toBe(adapted);
    await expectRefusal(
      () => engine.generate({ ...request, adapterId: id, adapterScale: Number.NaN }),
      EngineStateError,
      'adapter scale must be a number',
    );
  });
});

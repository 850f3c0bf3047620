import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJsonlBytes } from '../../src/data/jsonl';
import { batchExamples } from '../../src/data/prepare';
import { LoraWeights } from '../../src/lora/adapter';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { padTokenId, prepareRunData, prepTokenizerFor } from '../../src/train/pipeline';
import { validateTrainSettings } from '../../src/train/settings';
import type { RunEvent, RunRequest } from '../../src/app/api';
import type { WebtuneEngine } from '../../src/app/engine';
import { NotFoundError } from '../../src/storage/errors';
import { expectRefusal, goldenAdapter } from '../export/helpers';
import { testGpu } from '../helpers/gpu';
import { SHARED, STORIES_260K } from '../helpers/paths';
import { engineWithStories, peftZip } from './fixtures';

/** Four Zog stories: with batch 4 the first step sees all of them, in whatever order the epoch shuffles them. */
const ZOG = `${readFileSync(join(SHARED, 'data/zog_stories_train.jsonl'), 'utf8').split('\n').slice(0, 4).join('\n')}\n`;
const SETTINGS = { lr: 1e-3, epochs: 1, batchSize: 4, maxLength: 24, evalFraction: 0, checkpointEvery: 0, lora: { dropout: 0 } };

/** Mean token loss of the four stories through the model with `adapter`, computed outside the engine. */
async function referenceLoss(adapter: 'golden' | null): Promise<number> {
  const gpu = await testGpu();
  const opened = await openModel(nodeFileSource(STORIES_260K));
  const prep = prepTokenizerFor(opened);
  const data = prepareRunData(parseJsonlBytes(new TextEncoder().encode(ZOG)).rows, null, prep, validateTrainSettings(SETTINGS));
  const [padded] = batchExamples(data.train, SETTINGS.batchSize, padTokenId(prep));
  const batch = makeBatch(padded.inputIds, padded.labels);
  const model = await LlamaModel.load(gpu, opened.weights);
  const golden = await goldenAdapter();
  model.loss(batch, adapter ? LoraWeights.fromTensors(gpu, opened.config, golden.config, golden.tensors, 'golden') : null);
  return (await model.readLossSum(batch)) / batch.targetCount;
}

async function firstStepLoss(engine: WebtuneEngine, request: RunRequest): Promise<number> {
  let loss: number | null = null;
  await engine.startRun(request, (event: RunEvent) => {
    if (event.type === 'progress' && event.progress.step === 1) loss = event.progress.loss;
  });
  expect(loss).not.toBeNull();
  return loss!;
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('training further from a stored adapter', () => {
  it('starts from the imported weights: the first step has the imported adapter loss, not the fresh-init (base) loss', async () => {
    const { engine } = await engineWithStories();
    const { id } = await engine.importAdapter(peftZip(await goldenAdapter(), 'golden.zip'));
    const dataset = await engine.commitDataset((await engine.importDataset('zog', new Blob([ZOG]), 'zog.jsonl')).previewId);
    const request: RunRequest = { datasetId: dataset.id, evalDatasetId: null, settings: SETTINGS };

    const [importedLoss, baseLoss] = [await referenceLoss('golden'), await referenceLoss(null)];
    expect(relative(importedLoss, baseLoss)).toBeGreaterThan(1e-3);

    // The adapter's r and targets replace the requested ones; dropout stays as requested.
    const further = { ...request, initAdapterId: id, settings: { ...SETTINGS, lora: { r: 8, targets: ['o_proj' as const], dropout: 0 } } };
    expect(relative(await firstStepLoss(engine, further), importedLoss)).toBeLessThan(1e-5);
    const [run] = await engine.listRuns();
    expect(run.settings.lora).toEqual({ r: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj'], useRslora: false });

    expect(relative(await firstStepLoss(engine, request), baseLoss)).toBeLessThan(1e-5);
    await expectRefusal(() => engine.startRun({ ...request, initAdapterId: 'adapter-missing' }), NotFoundError, 'adapter-missing');
  });
});

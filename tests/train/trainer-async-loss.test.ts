import { describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../src/lora/adapter';
import { LlamaModel } from '../../src/model/llama';
import { makeBatch } from '../../src/train/batch';
import { validateTrainSettings } from '../../src/train/settings';
import { type TrainProgress, LoraTrainer } from '../../src/train/trainer';
import { testGpu } from '../helpers/gpu';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';

describe('LoraTrainer progress reports', () => {
  // Every step trains on the same rows (identical examples), so the data order cannot matter and a
  // plain loop of lossAndGradients + AdamW is the reference for each step's loss.
  const config = tinyConfig();
  const row = { inputIds: [1, 5, 9, 22, 3, 36, 17, 4], labels: [-100, 5, 9, 22, 3, 36, 17, 4], truncated: false };
  const settings = validateTrainSettings({
    lora: { r: 2, alpha: 4, targets: ['q_proj', 'v_proj', 'down_proj'] },
    lr: 3e-2,
    schedule: 'constant',
    epochs: 1,
    batchSize: 2,
    evalEvery: 2,
    checkpointEvery: 0,
    seed: 5,
  });

  it('deliver the exact loss of every step, in order, although losses are read back a step late', async () => {
    const gpu = await testGpu();
    const weights = memoryWeightsSource(config, tinyWeights(config));

    const model = await LlamaModel.load(gpu, weights);
    const adapter = new LoraAdapter(gpu, config, settings.lora);
    adapter.initPeft(1);
    const trainer = new LoraTrainer(gpu, model, adapter, settings, { train: Array(10).fill(row), eval: [row, row] }, 0);
    const reports: TrainProgress[] = [];
    const result = await trainer.run({ onProgress: (p) => reports.push(p) });

    const refModel = await LlamaModel.load(gpu, weights);
    const refAdapter = new LoraAdapter(gpu, config, settings.lora);
    refAdapter.initPeft(1);
    const refTrainer = new LoraTrainer(gpu, refModel, refAdapter, settings, { train: [row], eval: [row, row] }, 0);
    const batch = makeBatch([row.inputIds, row.inputIds], [row.labels, row.labels]);
    const expected: number[] = [];
    const expectedEval: number[] = [];
    for (let step = 1; step <= 5; step++) {
      refModel.lossAndGradients(batch, refAdapter, { lossScale: 1 / batch.targetCount });
      expected.push((await refModel.readLossSum(batch)) / batch.targetCount);
      refTrainer.optimizer.apply({ lr: settings.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxGradNorm: 1 });
      if (step % 2 === 0 || step === 5) expectedEval.push((await refTrainer.evalLoss())!);
    }

    expect(reports.map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);
    expect(reports.map((p) => p.loss)).toEqual(expected);
    // The losses move, so a report carrying its neighbour's loss could not pass.
    expect(new Set(expected).size).toBe(5);
    expect(reports.map((p) => p.evalLoss)).toEqual([undefined, expectedEval[0], undefined, expectedEval[1], expectedEval[2]]);
    expect(result).toMatchObject({
      status: 'completed',
      steps: 5,
      trainLossFirst: expected[0],
      trainLossLast: expected[4],
      evalLoss: expectedEval[2],
    });
  });
});

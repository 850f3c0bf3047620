import 'fake-indexeddb/auto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EvaluationProgress } from '../../src/eval/evaluate';
import { createNodeDevice } from '../../src/gpu/node-device';
import { EngineStateError, WebtuneEngine } from '../../src/app/engine';
import { SHARED, STORIES_260K } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';

const DATA = join(SHARED, 'data');
const lines = (file: string, count: number) => readFileSync(join(DATA, file), 'utf8').split('\n').slice(0, count);

describe('engine: evaluate', () => {
  it("scores a stored dataset with the base model and with an adapter, on the adapter's sequence length", async () => {
    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    await expect(engine.evaluate({ datasetId: 'ds-none', adapterId: null, maxNewTokens: 2, temperature: 0 })).rejects.toThrow(
      EngineStateError,
    );
    expect((await engine.init()).state).toBe('ready');
    const files = readdirSync(STORIES_260K).map((name) => ({
      path: `stories260K/${name}`,
      file: new File([readFileSync(join(STORIES_260K, name))], name),
    }));
    await engine.loadLocalModel(files, 'stories260K');
    const store = async (name: string, text: string) => {
      const preview = await engine.importDataset(name, new Blob([text]), `${name}.jsonl`);
      return (await engine.commitDataset(preview.previewId)).id;
    };
    const train = await store('zog', `${lines('zog_stories_train.jsonl', 8).join('\n')}\n`);
    // Three stories and a chat row with a Context: block, which gets generated answers.
    const held = await store('mixed', `${[...lines('zog_stories_eval.jsonl', 3), ...lines('chat_rag_sample.jsonl', 1)].join('\n')}\n`);
    const run = await engine.startRun({
      datasetId: train,
      evalDatasetId: null,
      settings: {
        lora: { r: 4, alpha: 8, targets: ['q_proj', 'v_proj'] },
        lr: 5e-3,
        epochs: 1,
        batchSize: 4,
        maxLength: 64,
        evalFraction: 0,
      },
      name: 'zog short',
    });
    expect(run.status).toBe('completed');

    const progress: EvaluationProgress[] = [];
    const report = await engine.evaluate({ datasetId: held, adapterId: run.adapterId, maxNewTokens: 2, temperature: 0 }, (p) =>
      progress.push(p),
    );
    expect(report.settings).toMatchObject({ rows: 4, ragRows: 1, maxLength: 64, maxNewTokens: 2, adapter: 'zog short' });
    expect(report.before.label).toBe('base');
    expect(report.after?.label).toBe('zog short');
    expect(report.examples).toHaveLength(8);
    expect(report.before.rag?.examples).toBe(1);
    expect(report.after!.loss).not.toBe(report.before.loss);
    expect(new Set(progress.map((p) => `${p.model} ${p.stage}`))).toEqual(
      new Set(['before loss', 'before generation', 'after loss', 'after generation']),
    );

    // Stories only: no answers to generate, which is the slow part on a CPU adapter.
    const base = await engine.evaluate({ datasetId: train, adapterId: null, maxNewTokens: 2, temperature: 0 });
    expect(base.after).toBeNull();
    expect(base.settings).toMatchObject({ adapter: null, rows: 8, ragRows: 0 });
    expect(base.examples).toHaveLength(8);
    await expect(engine.evaluate({ datasetId: held, adapterId: null, maxNewTokens: 0, temperature: 0 })).rejects.toThrow(/maxNewTokens/);
  });
});

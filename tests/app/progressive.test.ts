import 'fake-indexeddb/auto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeDataset } from '../../src/analysis/analyze';
import { parseJsonlBytes } from '../../src/data/jsonl';
import { createNodeDevice } from '../../src/gpu/node-device';
import type { ProgressiveEvent } from '../../src/app/api';
import { WebtuneEngine } from '../../src/app/engine';
import { ProgressivePlanError } from '../../src/app/progressive-run';
import { STORIES_260K } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';

const line = (...turns: [string, string][]) => JSON.stringify({ messages: turns.map(([role, content]) => ({ role, content })) });
const NAMES = ['Lily', 'Tom', 'Ben', 'Mia', 'Sam', 'Zoe', 'Max', 'Amy', 'Leo', 'Eva', 'Tim', 'Ana'];
const COLOURS = ['green', 'red', 'blue'];
const TERMS = [
  'overfitting',
  'dropout',
  'a learning rate',
  'an epoch',
  'a tokenizer',
  'an embedding',
  'attention',
  'a loss function',
  'fine-tuning',
  'a batch',
];

/**
 * Twelve greetings, ten ML definitions and three short grounded answers: no task leads clearly
 * (12 is 1.2x 10) and the largest is 4x the smallest, so the analysis recommends stages.
 */
function stagedChats(): string {
  const chats = NAMES.map((name) => line(['user', `Hi, I am ${name}! How are you?`], ['assistant', `Hello ${name}, I am fine, thanks!`]));
  const rag = COLOURS.map((colour) =>
    line(
      ['system', `Answer from the context.\n\nContext:\n[1] Zog is a ${colour} dragon.`],
      ['user', 'What colour is Zog?'],
      ['assistant', `Zog is ${colour} [1].`],
    ),
  );
  const definitions = TERMS.map((term) =>
    line(['user', `What is ${term} in machine learning?`], ['assistant', `In machine learning, ${term} is a training idea.`]),
  );
  return `${[...chats, ...definitions, ...rag].join('\n')}\n`;
}

const SETTINGS = {
  lora: { r: 4, alpha: 8, targets: ['q_proj' as const, 'v_proj' as const] },
  lr: 5e-3,
  epochs: 1,
  batchSize: 4,
  maxLength: 128,
  evalFraction: 0.25,
};

/**
 * Batches of one: 16 phase-1 steps and 2 phase-2 steps, so either phase can be paused between
 * steps; a checkpoint every step also reports every step's loss at once, so a pause asked for on a
 * step's progress takes effect right after that step.
 */
const STEPWISE = { ...SETTINGS, batchSize: 1, checkpointEvery: 1 };

async function stagedEngine(devices: GPUDevice[] = []) {
  const engine = new WebtuneEngine({
    requestDevice: async () => {
      const device = await createNodeDevice();
      devices.push(device);
      return device;
    },
    dbName: freshDbName(),
    historyFlushMs: 0,
  });
  expect((await engine.init()).state).toBe('ready');
  const files = readdirSync(STORIES_260K).map((name) => ({
    path: `stories260K/${name}`,
    file: new File([readFileSync(join(STORIES_260K, name))], name),
  }));
  await engine.loadLocalModel(files, 'stories260K');
  const datasetId = (
    await engine.commitDataset((await engine.importDataset('staged', new Blob([stagedChats()]), 'staged.jsonl')).previewId)
  ).id;
  return { engine, datasetId, devices };
}

describe('engine: progressive training', () => {
  it('trains the general rows, then the specialised ones from the phase-1 adapter, and reports forgetting', async () => {
    const text = stagedChats();
    const recommendation = analyzeDataset(parseJsonlBytes(new TextEncoder().encode(text)).rows).recommendation;
    expect(recommendation).toMatchObject({ strategy: 'progressive', tasks: ['conversational_chat', 'ai_ml_education', 'rag_enhanced'] });

    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    expect((await engine.init()).state).toBe('ready');
    const files = readdirSync(STORIES_260K).map((name) => ({
      path: `stories260K/${name}`,
      file: new File([readFileSync(join(STORIES_260K, name))], name),
    }));
    await engine.loadLocalModel(files, 'stories260K');
    const store = async (name: string, body: string) =>
      (await engine.commitDataset((await engine.importDataset(name, new Blob([body]), `${name}.jsonl`)).previewId)).id;
    const staged = await store('staged', text);

    const events: ProgressiveEvent[] = [];
    const outcome = await engine.startProgressiveRun({ datasetId: staged, settings: SETTINGS, name: 'staged' }, (e) => events.push(e));
    expect(outcome.status).toBe('completed');
    // Phase 1: 22 rows, 6 held out, 16 in batches of 4 = 4 steps; phase 2: 3 rows, 1 held out, 1 step.
    expect(outcome.phases).toMatchObject([
      { phase: 1, tasks: ['conversational_chat', 'ai_ml_education'], rows: 22, steps: 4 },
      { phase: 2, tasks: ['rag_enhanced'], rows: 3, steps: 1 },
    ]);
    const forgetting = outcome.forgetting!;
    expect(forgetting.phase1EvalLossAfterPhase1).toBe(outcome.phases[0].evalLossAfter);
    expect(forgetting.forgetting).toBeCloseTo(forgetting.phase1EvalLossAfterPhase2 - forgetting.phase1EvalLossAfterPhase1, 12);
    expect(forgetting.phase1EvalLossAfterPhase1).toBeLessThan(outcome.phases[0].evalLossBefore!);
    expect(events.filter((e) => e.type === 'progress').map((e) => e.phase)).toEqual([1, 1, 1, 1, 2]);
    const [adapter] = await engine.listAdapters();
    expect(adapter).toMatchObject({ id: outcome.adapterId, name: 'staged', runId: outcome.runId, datasetName: 'staged' });
    const [run] = await engine.listRuns();
    expect(run).toMatchObject({ id: outcome.runId, kind: 'progressive', status: 'completed', step: 5, totalSteps: 5, forgetting });
    expect(run.history.filter((p) => p.loss !== undefined).map((p) => [p.phase, p.step])).toEqual([
      [1, 1],
      [1, 2],
      [1, 3],
      [1, 4],
      [2, 5],
    ]);

    // A dataset whose analysis recommends one mix is refused with the reason.
    const mixed = await store('mixed', readFileSync(join(STORIES_260K, '../../data/chat_rag_sample.jsonl'), 'utf8'));
    await expect(engine.startProgressiveRun({ datasetId: mixed, settings: SETTINGS })).rejects.toThrow(ProgressivePlanError);
    await expect(engine.startProgressiveRun({ datasetId: mixed, settings: SETTINGS })).rejects.toThrow(/recommends single training/);
  });

  it('pauses in either phase and resumes there, ending where an uninterrupted run ends', async () => {
    const reference = await stagedEngine();
    const straight = await reference.engine.startProgressiveRun({ datasetId: reference.datasetId, settings: STEPWISE });
    expect(straight).toMatchObject({ status: 'completed', step: 18, totalSteps: 18 });
    expect(straight.phases.map((p) => p.steps)).toEqual([16, 2]);

    // One run paused twice: after step 1 (phase 1), then, resumed, after step 17 (phase 2's first).
    const { engine, datasetId } = await stagedEngine();
    const pauseAt = (step: number, events: ProgressiveEvent[]) => (e: ProgressiveEvent) => {
      events.push(e);
      if (e.type === 'progress' && e.progress.step === step) void engine.pause();
    };
    const steps = (events: ProgressiveEvent[]) => events.flatMap((e) => (e.type === 'progress' ? [`${e.phase}:${e.progress.step}`] : []));
    const first: ProgressiveEvent[] = [];
    const paused = await engine.startProgressiveRun({ datasetId, settings: STEPWISE }, pauseAt(1, first));
    expect(paused).toMatchObject({ status: 'paused', adapterId: null });
    expect(steps(first)).toEqual(['1:1']);
    let [run] = await engine.listRuns();
    expect(run).toMatchObject({ status: 'paused', kind: 'progressive', lastCheckpointStep: 1 });
    expect(await engine.listAdapters()).toEqual([]);

    // The resumed run trains only what was left: phase 1 from step 2, then phase 2 until its pause.
    const second: ProgressiveEvent[] = [];
    const pausedAgain = await engine.resumeRun(run.id, pauseAt(17, second));
    expect(pausedAgain).toMatchObject({ status: 'paused', step: 17 });
    expect(steps(second)).toEqual([...Array.from({ length: 15 }, (_, i) => `1:${i + 2}`), '2:17']);
    [run] = await engine.listRuns();
    expect(run).toMatchObject({ status: 'paused', lastCheckpointStep: 17 });
    expect(run.phases![0].outcome).toMatchObject({ status: 'completed', steps: 16 });

    const third: ProgressiveEvent[] = [];
    const done = await engine.resumeRun(run.id, (e) => third.push(e));
    expect(done).toMatchObject({ status: 'completed', step: 18, totalSteps: 18 });
    expect(steps(third)).toEqual(['2:18']);
    expect(done.phases!.map((p) => p.evalLossAfter)).toEqual(straight.phases.map((p) => expect.closeTo(p.evalLossAfter!, 6)));
    expect(done.phases![0].evalLossBefore).toBeCloseTo(straight.phases[0].evalLossBefore!, 6);
    expect(done.forgetting!.phase1EvalLossAfterPhase2).toBeCloseTo(straight.forgetting!.phase1EvalLossAfterPhase2, 6);
    const [adapter] = await engine.listAdapters();
    expect(adapter).toMatchObject({ id: done.adapterId, runId: run.id });
    expect((await engine.listRuns())[0]).toMatchObject({ status: 'completed', step: 18 });
  });

  it('pauses a progressive run when the GPU device is lost and resumes it on a new device', async () => {
    const { engine, datasetId, devices } = await stagedEngine();
    const lost = await engine.startProgressiveRun({ datasetId, settings: STEPWISE }, (e) => {
      if (e.type === 'progress' && e.phase === 2 && e.progress.step === 17) devices.at(-1)!.destroy();
    });
    expect(lost.status).toBe('paused');
    expect(lost.error).toMatch(/lost|destroyed/i);
    expect(lost.phases.map((p) => p.phase)).toEqual([1, 2]);
    const [run] = await engine.listRuns();
    expect(run).toMatchObject({ status: 'paused', kind: 'progressive', error: lost.error });
    expect(run.phases![0].outcome).toMatchObject({ status: 'completed', steps: 16 });

    const done = await engine.resumeRun(run.id);
    expect(done).toMatchObject({ status: 'completed', step: 18 });
    expect(done.forgetting).not.toBeNull();
    expect(devices.length).toBe(2);
  });
});

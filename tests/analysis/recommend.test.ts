import { describe, expect, it } from 'vitest';
import { analyzeDataset } from '../../src/analysis/analyze';
import { filterDataset } from '../../src/analysis/filter';
import { builtinPresets } from '../../src/analysis/presets';
import { LEAD_MIN_SHARE, LEAD_RATIO, recommend, recommendedFilter } from '../../src/analysis/recommend';
import { TASK_IDS, type TaskId } from '../../src/analysis/tasks';
import type { DatasetRow } from '../../src/data/types';
import { chat } from './sample';

const counts = (partial: Partial<Record<TaskId, number>>) =>
  Object.fromEntries(TASK_IDS.map((task) => [task, partial[task] ?? 0])) as Record<TaskId, number>;

describe('training strategy recommendation', () => {
  it('trains a task alone when it has at least 70% of the conversations', () => {
    const r = recommend(counts({ rag_enhanced: 70, ai_ml_education: 20, conversational_chat: 10 }));
    expect(r).toMatchObject({ strategy: 'single', presetIds: ['rag_enhanced'], tasks: ['rag_enhanced'], mixWeights: null });
    expect(r.reasons[0]).toContain('rag_enhanced (70, 70.0%) has at least 70%');
  });

  it('mixes comparable tasks in one multi-task run with temperature-2 weights', () => {
    const r = recommend(counts({ rag_enhanced: 40, technical_implementation: 40, code_generation: 20 }));
    expect(r.strategy).toBe('multi');
    expect(r.presetIds).toEqual(['multi_task']);
    expect(r.tasks).toEqual(['rag_enhanced', 'technical_implementation', 'code_generation']);
    // sqrt(0.4) : sqrt(0.4) : sqrt(0.2), normalised: the small task is lifted from 20% to 26%.
    expect(r.mixWeights).toEqual({ rag_enhanced: 0.369, technical_implementation: 0.369, code_generation: 0.261 });
  });

  it('trains in stages, general to specialised, when no task leads and the chosen tasks differ 4x or more in size', () => {
    const r = recommend(counts({ rag_enhanced: 40, conversational_chat: 35, ai_ml_education: 10 }));
    expect(r.strategy).toBe('progressive');
    expect(r.presetIds).toEqual(['conversational_chat', 'ai_ml_education', 'rag_enhanced']);
    expect(r.mixWeights).toBeNull();
    expect(r.reasons.join('\n')).toContain('4.0x');
  });

  it('leaves out tasks under 5% or 3 conversations, and says so', () => {
    const r = recommend(counts({ rag_enhanced: 50, technical_implementation: 48, code_generation: 2 }));
    expect(r.tasks).toEqual(['rag_enhanced', 'technical_implementation']);
    expect(r.reasons.some((reason) => reason.startsWith('code_generation (2, 2.0%) is under the minimum'))).toBe(true);
  });

  it('falls back to a single task when no task is large enough to mix', () => {
    expect(recommend(counts({ rag_enhanced: 2, conversational_chat: 2 }))).toMatchObject({
      strategy: 'single',
      presetIds: ['rag_enhanced'],
    });
    expect(recommend(counts({ rag_enhanced: 5, conversational_chat: 2, code_generation: 2 })).presetIds).toEqual(['rag_enhanced']);
  });

  it('has nothing to recommend for an empty dataset', () => {
    expect(recommend(counts({}))).toEqual({
      strategy: 'single',
      presetIds: [],
      tasks: [],
      mixWeights: null,
      reasons: ['the dataset has no conversations'],
      taskFilter: null,
      nextSteps: [],
    });
  });
});

/** Conversations the analysis gives each primary task, n of them, all different. */
const BUILD: Record<TaskId, (i: number) => DatasetRow> = {
  rag_enhanced: (i) =>
    chat(
      [
        'system',
        `Answer from the context and cite sources.\n\nContext:\n[1] Plan ${i} costs ${10 + i} euros per seat.\n` +
          `[2] Plan ${i} renews monthly.`,
      ],
      ['user', `How much is plan ${i}?`],
      ['assistant', `Plan ${i} costs ${10 + i} euros per seat and month, renewed monthly [1][2].`],
    ),
  technical_implementation: (i) =>
    chat(
      ['user', `How do I deploy service number ${i} to staging?`],
      ['assistant', `1. Build image ${i} with \`docker build -t svc${i} .\`.\n2. Push it and restart the staging stack.`],
    ),
  ai_ml_education: (i) =>
    chat(
      ['user', `What is overfitting in machine learning, example ${i}?`],
      ['assistant', `Overfitting means the model fits noise in training data ${i} and generalises badly to held-out data.`],
    ),
  conversational_chat: (i) =>
    chat(['user', `Hi there, friend ${i}! How are you?`], ['assistant', `Hello friend ${i}, doing well, thanks for asking!`]),
  code_generation: (i) =>
    chat(
      ['user', `Write a Python function that returns ${i} squared.`],
      ['assistant', `\`\`\`python\ndef square_${i}():\n    return ${i} * ${i}\n\`\`\``],
    ),
};

function dataset(sizes: Partial<Record<TaskId, number>>): DatasetRow[] {
  return TASK_IDS.flatMap((task) => Array.from({ length: sizes[task] ?? 0 }, (_, i) => BUILD[task](i)));
}

describe('the task decision guide', () => {
  // The guide's dataset: 31 conversations, 11 / 8 / 6 / 4 / 2.
  const GUIDE = { rag_enhanced: 11, technical_implementation: 8, ai_ml_education: 6, conversational_chat: 4, code_generation: 2 };
  const rows = dataset(GUIDE);
  const analysis = analyzeDataset(rows);
  const rag = builtinPresets().find((p) => p.id === 'rag_enhanced')!;

  it('has the rows classified into its distribution', () => {
    expect(analysis.conversations).toBe(31);
    expect(Object.fromEntries(TASK_IDS.map((task) => [task, analysis.distribution[task].percent]))).toEqual({
      rag_enhanced: 35.5,
      technical_implementation: 25.8,
      ai_ml_education: 19.4,
      conversational_chat: 12.9,
      code_generation: 6.5,
    });
  });

  it('recommends single-task rag_enhanced with its preset (r 20), then multi-task and progressive as next steps', () => {
    const r = analysis.recommendation;
    expect(r).toMatchObject({
      strategy: 'single',
      presetIds: ['rag_enhanced'],
      tasks: ['rag_enhanced'],
      mixWeights: null,
      taskFilter: 'rag_enhanced',
    });
    expect(rag.lora.r).toBe(20);
    expect(r.reasons).toEqual([
      'no task reaches 70% (largest: rag_enhanced (11, 35.5%))',
      'but rag_enhanced is clearly ahead: 1.38x the conversations of the next task, technical_implementation (8, 25.8%) (at least 1.3x), ' +
        'and at least 30% of all, so start single-task on it and expand from the results',
      'code_generation (2, 6.5%) is under the minimum of 5% and 3 conversations for a task of its own: too few to learn from reliably, ' +
        'so it is left out of the task list (add examples to include it)',
      'train with the rag_enhanced preset on its 11 conversations: the task filter sets the other 20 aside ' +
        '(turn it off to train them along under the same preset)',
    ]);
    expect(r.nextSteps).toHaveLength(2);
    const [multi, progressive] = r.nextSteps;
    expect(multi).toMatchObject({
      strategy: 'multi',
      presetIds: ['multi_task'],
      tasks: ['rag_enhanced', 'technical_implementation', 'ai_ml_education', 'conversational_chat'],
    });
    expect(Object.values(multi.mixWeights!).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    expect(multi.reason).toMatch(
      /^for diverse use: when the adapter must also serve technical_implementation, ai_ml_education, conversational_chat/,
    );
    expect(progressive).toMatchObject({
      strategy: 'progressive',
      presetIds: ['conversational_chat', 'ai_ml_education', 'technical_implementation', 'rag_enhanced'],
      mixWeights: null,
    });
    expect(progressive.reason).toMatch(/^when time allows: train the tasks as stages, general to specialised/);
  });

  it('turns the task filter on when the advice is followed: only the 11 RAG conversations train', () => {
    const filter = recommendedFilter(analysis.recommendation, rag);
    expect(filter).toEqual({ minResponseChars: 40, maxResponseChars: 800, keepTask: 'rag_enhanced' });
    const result = filterDataset(rows, filter);
    expect(result.removed.other_task).toHaveLength(20);
    expect(result.keptIndices).toEqual(analysis.ragIndices);
    expect(result.kept).toHaveLength(11);
    // Another preset than the recommended one is not following the advice: no task filter.
    const multi = builtinPresets().find((p) => p.id === 'multi_task')!;
    expect(recommendedFilter(analysis.recommendation, multi).keepTask).toBeNull();
  });

  it('stays multi-task when the shares are close', () => {
    const close = analyzeDataset(
      dataset({ rag_enhanced: 10, technical_implementation: 9, ai_ml_education: 6, conversational_chat: 4, code_generation: 2 }),
    );
    const r = close.recommendation;
    expect(r).toMatchObject({ strategy: 'multi', presetIds: ['multi_task'], taskFilter: null, nextSteps: [] });
    expect(r.tasks).toEqual(['rag_enhanced', 'technical_implementation', 'ai_ml_education', 'conversational_chat']);
    expect(r.reasons).toContain(
      'rag_enhanced is not clearly ahead of technical_implementation: 1.11x its conversations, under 1.3x, so no task is the primary one',
    );
    expect(recommendedFilter(r, builtinPresets().find((p) => p.id === 'multi_task')!).keepTask).toBeNull();
  });

  it('draws the lead at 1.3x and 30%', () => {
    expect(LEAD_RATIO).toBe(1.3);
    expect(LEAD_MIN_SHARE).toBe(0.3);
    // 13 / 10 = 1.3x with 13 of 40 = 32.5%: single; 12 / 10 = 1.2x: multi.
    expect(recommend(counts({ rag_enhanced: 13, technical_implementation: 10, ai_ml_education: 9, conversational_chat: 8 })).strategy).toBe(
      'single',
    );
    expect(
      recommend(counts({ rag_enhanced: 12, technical_implementation: 10, ai_ml_education: 10, conversational_chat: 8 })).strategy,
    ).toBe('multi');
    // 1.45x ahead but 29% of all: too small a share to start alone.
    const small = recommend(
      counts({ rag_enhanced: 29, technical_implementation: 20, ai_ml_education: 20, conversational_chat: 16, code_generation: 15 }),
    );
    expect(small.strategy).toBe('multi');
    expect(small.reasons).toContain(
      'rag_enhanced leads technical_implementation 1.45x but has under 30% of all conversations, too few to start alone',
    );
  });

  it('gives a dominant task the same filter and next steps', () => {
    const r = recommend(counts({ rag_enhanced: 70, ai_ml_education: 20, conversational_chat: 10 }));
    expect(r.taskFilter).toBe('rag_enhanced');
    expect(r.nextSteps.map((step) => step.strategy)).toEqual(['multi', 'progressive']);
    expect(recommend(counts({ rag_enhanced: 9, conversational_chat: 1 })).nextSteps).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { recommend } from '../../src/analysis/recommend';
import { TASK_IDS, type TaskId } from '../../src/analysis/tasks';

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

  it('trains in stages, general to specialised, when the chosen tasks differ 4x or more in size', () => {
    const r = recommend(counts({ rag_enhanced: 60, conversational_chat: 30, ai_ml_education: 10 }));
    expect(r.strategy).toBe('progressive');
    expect(r.presetIds).toEqual(['conversational_chat', 'ai_ml_education', 'rag_enhanced']);
    expect(r.mixWeights).toBeNull();
    expect(r.reasons.join('\n')).toContain('6.0x');
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
    });
  });
});

/**
 * Training strategy from the task mix. The thresholds, and why they sit where they do, are in
 * src/analysis/README.md.
 */
import { TASK_IDS, type TaskId } from './tasks';

export type Strategy = 'single' | 'multi' | 'progressive';

export interface Recommendation {
  strategy: Strategy;
  /** Presets to train with, in training order (one per stage for progressive). */
  presetIds: string[];
  /** The tasks trained, in training order. */
  tasks: TaskId[];
  /** Sampling weight per task in the multi-task mix (they sum to 1); null for the other strategies. */
  mixWeights: Partial<Record<TaskId, number>> | null;
  reasons: string[];
}

/** A task with at least this share of the conversations is trained alone. */
export const SINGLE_TASK_SHARE = 0.7;
/** Below this share, or below MIN_TASK_CONVERSATIONS, a task is too small to be a task of its own in a mix or a stage. */
export const MIN_TASK_SHARE = 0.05;
export const MIN_TASK_CONVERSATIONS = 3;
/** From this ratio between the largest and the smallest chosen task on, tasks train in stages instead of one mix. */
export const PROGRESSIVE_IMBALANCE = 4;
/** Mix weights are share^(1 / MIX_TEMPERATURE), normalised. */
export const MIX_TEMPERATURE = 2;
/** Stage order for progressive training: general behaviour first, the most specialised format last. */
export const CURRICULUM: readonly TaskId[] = [
  'conversational_chat',
  'ai_ml_education',
  'technical_implementation',
  'code_generation',
  'rag_enhanced',
];
export const MULTI_TASK_PRESET = 'multi_task';

const percent = (count: number, total: number) => `${((100 * count) / total).toFixed(1)}%`;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Task presets carry the task's id. */
export function recommend(counts: Record<TaskId, number>): Recommendation {
  const total = TASK_IDS.reduce((sum, task) => sum + counts[task], 0);
  if (total === 0) return { strategy: 'single', presetIds: [], tasks: [], mixWeights: null, reasons: ['the dataset has no conversations'] };
  const bySize = [...TASK_IDS].filter((task) => counts[task] > 0).sort((a, b) => counts[b] - counts[a]);
  const describe = (task: TaskId) => `${task} (${counts[task]}, ${percent(counts[task], total)})`;
  const single = (task: TaskId, reasons: string[]): Recommendation => ({
    strategy: 'single',
    presetIds: [task],
    tasks: [task],
    mixWeights: null,
    reasons: [...reasons, `train with the ${task} preset; the other conversations train along under it`],
  });

  const top = bySize[0];
  if (counts[top] / total >= SINGLE_TASK_SHARE) {
    return single(top, [`${describe(top)} has at least ${100 * SINGLE_TASK_SHARE}% of the conversations`]);
  }

  const isChosen = (task: TaskId) => counts[task] / total >= MIN_TASK_SHARE && counts[task] >= MIN_TASK_CONVERSATIONS;
  const chosen = bySize.filter(isChosen);
  const minorReasons = bySize
    .filter((task) => !isChosen(task))
    .map(
      (task) =>
        `${describe(task)} is under the minimum of ${100 * MIN_TASK_SHARE}% and ${MIN_TASK_CONVERSATIONS} conversations for a task ` +
        'of its own: too few to learn from reliably, so it is left out of the task list (add examples to include it)',
    );
  const noneDominant = `no task reaches ${100 * SINGLE_TASK_SHARE}% (largest: ${describe(top)})`;
  if (chosen.length <= 1) {
    const task = chosen[0] ?? top;
    return single(task, [noneDominant, ...minorReasons, `${task} is the only task large enough to train on its own`]);
  }

  const largest = chosen[0];
  const smallest = chosen[chosen.length - 1];
  const imbalance = counts[largest] / counts[smallest];
  const sizes = `${chosen.length} tasks have enough conversations: ${chosen.map(describe).join(', ')}`;
  if (imbalance >= PROGRESSIVE_IMBALANCE) {
    const stages = CURRICULUM.filter((task) => chosen.includes(task));
    return {
      strategy: 'progressive',
      presetIds: stages,
      tasks: stages,
      mixWeights: null,
      reasons: [
        noneDominant,
        sizes,
        `${largest} has ${imbalance.toFixed(1)}x the conversations of ${smallest} (>= ${PROGRESSIVE_IMBALANCE}x): in one mix ` +
          `${smallest} would get too few updates, so each task trains as a stage of its own with its own preset`,
        `stages run from general to specialised (${stages.join(' -> ')}), so the most specific output format is learnt last and not washed out`,
        ...minorReasons,
      ],
    };
  }

  const raw = chosen.map((task) => (counts[task] / total) ** (1 / MIX_TEMPERATURE));
  const sum = raw.reduce((a, b) => a + b, 0);
  const mixWeights: Partial<Record<TaskId, number>> = {};
  chosen.forEach((task, i) => (mixWeights[task] = round3(raw[i] / sum)));
  return {
    strategy: 'multi',
    presetIds: [MULTI_TASK_PRESET],
    tasks: chosen,
    mixWeights,
    reasons: [
      noneDominant,
      sizes,
      `their sizes are within ${PROGRESSIVE_IMBALANCE}x of each other (${imbalance.toFixed(1)}x): one multi-task run over a mix ` +
        `weighted by share^(1/${MIX_TEMPERATURE}), which lifts the smaller tasks without repeating their rows too often`,
      ...minorReasons,
    ],
  };
}

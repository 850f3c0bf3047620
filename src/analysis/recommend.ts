/**
 * Training strategy from the task mix. The thresholds, and why they sit where they do, are in
 * src/analysis/README.md.
 */
import type { FilterOptions } from './filter';
import type { Preset } from './presets';
import { TASK_IDS, type TaskId } from './tasks';

export type Strategy = 'single' | 'multi' | 'progressive';

/** Another strategy to try once the recommended one has results, and why. */
export interface NextStep {
  strategy: Exclude<Strategy, 'single'>;
  presetIds: string[];
  tasks: TaskId[];
  mixWeights: Partial<Record<TaskId, number>> | null;
  reason: string;
}

export interface Recommendation {
  strategy: Strategy;
  /** Presets to train with, in training order (one per stage for progressive). */
  presetIds: string[];
  /** The tasks trained, in training order. */
  tasks: TaskId[];
  /** Sampling weight per task in the multi-task mix (they sum to 1); null for the other strategies. */
  mixWeights: Partial<Record<TaskId, number>> | null;
  reasons: string[];
  /**
   * Single-task advice: the task whose conversations the quality filter keeps (the `other_task`
   * rule, FilterOptions.keepTask), on by default when the advice is followed (recommendedFilter);
   * null for the other strategies.
   */
  taskFilter: TaskId | null;
  /** What to try after a single-task run: multi-task and progressive training over the tasks large enough, with their reasons. */
  nextSteps: NextStep[];
}

/** A task with at least this share of the conversations is trained alone. */
export const SINGLE_TASK_SHARE = 0.7;
/**
 * Below SINGLE_TASK_SHARE, the largest task is still trained alone first when it is clearly ahead:
 * at least LEAD_RATIO times the conversations of the next task and at least LEAD_MIN_SHARE of all.
 */
export const LEAD_RATIO = 1.3;
export const LEAD_MIN_SHARE = 0.3;
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

function mixWeights(tasks: TaskId[], counts: Record<TaskId, number>, total: number): Partial<Record<TaskId, number>> {
  const raw = tasks.map((task) => (counts[task] / total) ** (1 / MIX_TEMPERATURE));
  const sum = raw.reduce((a, b) => a + b, 0);
  const weights: Partial<Record<TaskId, number>> = {};
  for (const [i, task] of tasks.entries()) weights[task] = round3(raw[i] / sum);
  return weights;
}

const stagesOf = (tasks: TaskId[]) => CURRICULUM.filter((task) => tasks.includes(task));

/** The guide's next steps after a single-task run on `top`: one mix for diverse use, stages when time allows. */
function nextSteps(top: TaskId, chosen: TaskId[], counts: Record<TaskId, number>, total: number): NextStep[] {
  if (chosen.length < 2) return [];
  const others = chosen.filter((task) => task !== top).join(', ');
  const stages = stagesOf(chosen);
  return [
    {
      strategy: 'multi',
      presetIds: [MULTI_TASK_PRESET],
      tasks: chosen,
      mixWeights: mixWeights(chosen, counts, total),
      reason:
        `for diverse use: when the adapter must also serve ${others}, train one multi-task run with the ${MULTI_TASK_PRESET} preset ` +
        `over ${chosen.join(', ')}, sampled by share^(1/${MIX_TEMPERATURE}) so the smaller tasks are not drowned out`,
    },
    {
      strategy: 'progressive',
      presetIds: stages,
      tasks: stages,
      mixWeights: null,
      reason:
        `when time allows: train the tasks as stages, general to specialised (${stages.join(' -> ')}), each with its own preset ` +
        'and a forgetting check between stages; the slowest path, but every task gets the settings that suit it',
    },
  ];
}

/** Task presets carry the task's id. */
export function recommend(counts: Record<TaskId, number>): Recommendation {
  const total = TASK_IDS.reduce((sum, task) => sum + counts[task], 0);
  if (total === 0) {
    return {
      strategy: 'single',
      presetIds: [],
      tasks: [],
      mixWeights: null,
      reasons: ['the dataset has no conversations'],
      taskFilter: null,
      nextSteps: [],
    };
  }
  const bySize = [...TASK_IDS].filter((task) => counts[task] > 0).sort((a, b) => counts[b] - counts[a]);
  const describe = (task: TaskId) => `${task} (${counts[task]}, ${percent(counts[task], total)})`;
  const isChosen = (task: TaskId) => counts[task] / total >= MIN_TASK_SHARE && counts[task] >= MIN_TASK_CONVERSATIONS;
  const chosen = bySize.filter(isChosen);
  const minorReasons = bySize
    .filter((task) => !isChosen(task))
    .map(
      (task) =>
        `${describe(task)} is under the minimum of ${100 * MIN_TASK_SHARE}% and ${MIN_TASK_CONVERSATIONS} conversations for a task ` +
        'of its own: too few to learn from reliably, so it is left out of the task list (add examples to include it)',
    );
  const single = (task: TaskId, reasons: string[]): Recommendation => {
    const others = total - counts[task];
    const filter =
      others === 0
        ? `train with the ${task} preset on all ${counts[task]} conversations`
        : `train with the ${task} preset on its ${counts[task]} conversations: the task filter sets the other ${others} aside ` +
          '(turn it off to train them along under the same preset)';
    return {
      strategy: 'single',
      presetIds: [task],
      tasks: [task],
      mixWeights: null,
      reasons: [...reasons, filter],
      taskFilter: task,
      nextSteps: nextSteps(task, chosen.includes(task) ? chosen : [task, ...chosen], counts, total),
    };
  };

  const top = bySize[0];
  const runnerUp = bySize[1];
  if (counts[top] / total >= SINGLE_TASK_SHARE) {
    return single(top, [`${describe(top)} has at least ${100 * SINGLE_TASK_SHARE}% of the conversations`, ...minorReasons]);
  }
  const noneDominant = `no task reaches ${100 * SINGLE_TASK_SHARE}% (largest: ${describe(top)})`;
  const lead = runnerUp === undefined ? Infinity : counts[top] / counts[runnerUp];
  if (isChosen(top) && counts[top] / total >= LEAD_MIN_SHARE && lead >= LEAD_RATIO) {
    return single(top, [
      noneDominant,
      `but ${top} is clearly ahead: ${lead.toFixed(2)}x the conversations of the next task, ${describe(runnerUp)} ` +
        `(at least ${LEAD_RATIO}x), and at least ${100 * LEAD_MIN_SHARE}% of all, so start single-task on it and expand from the results`,
      ...minorReasons,
    ]);
  }

  if (chosen.length <= 1) {
    const task = chosen[0] ?? top;
    return single(task, [noneDominant, ...minorReasons, `${task} is the only task large enough to train on its own`]);
  }

  const largest = chosen[0];
  const smallest = chosen[chosen.length - 1];
  const imbalance = counts[largest] / counts[smallest];
  const sizes = `${chosen.length} tasks have enough conversations: ${chosen.map(describe).join(', ')}`;
  const close =
    lead < LEAD_RATIO
      ? `${top} is not clearly ahead of ${runnerUp}: ${lead.toFixed(2)}x its conversations, under ${LEAD_RATIO}x, ` +
        'so no task is the primary one'
      : `${top} leads ${runnerUp} ${lead.toFixed(2)}x but has under ${100 * LEAD_MIN_SHARE}% of all conversations, too few to start alone`;
  if (imbalance >= PROGRESSIVE_IMBALANCE) {
    const stages = stagesOf(chosen);
    return {
      strategy: 'progressive',
      presetIds: stages,
      tasks: stages,
      mixWeights: null,
      reasons: [
        noneDominant,
        close,
        sizes,
        `${largest} has ${imbalance.toFixed(1)}x the conversations of ${smallest} (>= ${PROGRESSIVE_IMBALANCE}x): in one mix ` +
          `${smallest} would get too few updates, so each task trains as a stage of its own with its own preset`,
        `stages run from general to specialised (${stages.join(' -> ')}), ` +
          'so the most specific output format is learnt last and not washed out',
        ...minorReasons,
      ],
      taskFilter: null,
      nextSteps: [],
    };
  }

  return {
    strategy: 'multi',
    presetIds: [MULTI_TASK_PRESET],
    tasks: chosen,
    mixWeights: mixWeights(chosen, counts, total),
    reasons: [
      noneDominant,
      close,
      sizes,
      `their sizes are within ${PROGRESSIVE_IMBALANCE}x of each other (${imbalance.toFixed(1)}x): one multi-task run over a mix ` +
        `weighted by share^(1/${MIX_TEMPERATURE}), which lifts the smaller tasks without repeating their rows too often`,
      ...minorReasons,
    ],
    taskFilter: null,
    nextSteps: [],
  };
}

/**
 * The quality filter for a run with `preset`: the preset's bounds, plus the task filter when the
 * run follows the single-task advice (the recommended preset of a single-task recommendation).
 */
export function recommendedFilter(recommendation: Recommendation, preset: Pick<Preset, 'id' | 'filter'>): FilterOptions {
  const follows = recommendation.strategy === 'single' && recommendation.presetIds[0] === preset.id;
  return { ...preset.filter, keepTask: follows ? recommendation.taskFilter : null };
}

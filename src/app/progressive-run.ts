/**
 * Progressive training as the page offers it. The recommendation orders the tasks from general to
 * specialised (CURRICULUM in src/analysis/recommend.ts); runProgressive trains two phases, so
 * phase 2 is the last, most specialised stage and phase 1 every other row. Phase 2 continues the
 * phase-1 adapter, which needs the same rank and targets, so both phases train with the settings
 * on the page.
 */
import { analyzeDataset } from '../analysis/analyze';
import type { TaskId } from '../analysis/tasks';
import type { DatasetRow } from '../data/types';
import type { RunPhaseRecord } from '../storage/db';
import type { ForgettingReport } from '../train/progressive';
import type { FilterOptions } from './quality-filter';
import type { RunRequest } from './api';

export type { ForgettingReport };

export interface ProgressiveRunRequest {
  datasetId: string;
  /** Both phases; validated like a run's. evalFraction holds out rows of each phase for its eval loss. */
  settings: RunRequest['settings'];
  filter?: FilterOptions | null;
  name?: string;
}

export interface ProgressivePhaseSummary {
  phase: 1 | 2;
  tasks: TaskId[];
  rows: number;
  /** Optimizer steps done in this phase (planned, for a phase that has not run yet). */
  steps: number;
  evalLossBefore: number | null;
  evalLossAfter: number | null;
}

/** The data recommends another strategy, or a phase would have no rows; the message says what to do. */
export class ProgressivePlanError extends Error {
  override name = 'ProgressivePlanError';
}

export interface ProgressivePhases {
  phase1: { tasks: TaskId[]; rows: DatasetRow[] };
  phase2: { tasks: TaskId[]; rows: DatasetRow[] };
}

export function progressivePhases(rows: DatasetRow[], datasetName: string): ProgressivePhases {
  const analysis = analyzeDataset(rows);
  const { strategy, tasks } = analysis.recommendation;
  if (strategy !== 'progressive') {
    throw new ProgressivePlanError(
      `The analysis of "${datasetName}" recommends ${strategy} training, ` +
        `not progressive (${analysis.recommendation.reasons[0]}); start a normal run instead.`,
    );
  }
  const last = tasks[tasks.length - 1];
  const phase1: ProgressivePhases['phase1'] = { tasks: tasks.slice(0, -1), rows: [] };
  const phase2: ProgressivePhases['phase2'] = { tasks: [last], rows: [] };
  // Rows of tasks too small to be a stage train in phase 1 with the general behaviour.
  for (const [i, c] of analysis.perConversation.entries()) (c.primaryTask === last ? phase2 : phase1).rows.push(rows[i]);
  return { phase1, phase2 };
}

/** What the page shows of a phase, from the run record: the plan, and the figures once known. */
export function phaseSummary(record: RunPhaseRecord): ProgressivePhaseSummary {
  return {
    phase: record.phase,
    tasks: record.tasks as TaskId[],
    rows: record.rows,
    steps: record.outcome?.steps ?? record.steps,
    evalLossBefore: record.outcome?.evalLossBefore ?? record.evalLossBefore ?? null,
    evalLossAfter: record.outcome?.evalLossAfter ?? null,
  };
}

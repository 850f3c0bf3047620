/**
 * What the page can say about a run before it starts: how many optimizer steps it makes, and the
 * settings a preset gives on a dataset. The step count uses the functions training uses (heldOutCount,
 * optimizerSteps), on row counts rather than tokenized examples; rows that tokenizing leaves without a
 * target, and packing, can only make the real run shorter.
 */
import { analyzeDataset } from '../analysis/analyze';
import { capWarmup, type Preset, validatePreset } from '../analysis/presets';
import { recommendedFilter } from '../analysis/recommend';
import type { TaskId } from '../analysis/tasks';
import { heldOutCount } from '../data/prepare';
import type { DatasetRow } from '../data/types';
import { optimizerSteps, type TrainSettings, validateTrainSettings } from '../train/settings';
import { type FilterReport, filterReport } from './quality-filter';

type StepSettings = Pick<TrainSettings, 'evalFraction' | 'batchSize' | 'gradAccum' | 'epochs'>;

export function plannedSteps(rows: number, settings: StepSettings, separateEvalSet: boolean): { trainRows: number; steps: number } {
  const trainRows = rows - (separateEvalSet ? 0 : heldOutCount(rows, settings.evalFraction));
  return { trainRows, steps: optimizerSteps(trainRows, settings) };
}

export interface PresetPlanRequest {
  datasetId: string;
  /** A separate eval set means no rows are held out of the training data. */
  evalDatasetId: string | null;
  /** The preset as the user edited it; checked like the presets file. */
  preset: Preset;
  /** Settings that presets leave alone (held-out share, seed, rsLoRA, ...) come from here. */
  settings: Partial<Omit<TrainSettings, 'lora'>> & { lora?: Partial<TrainSettings['lora']> };
}

export interface PresetPlan {
  preset: Preset;
  settings: TrainSettings;
  /** Set when the preset's warmup was cut to fit this run (capWarmup). */
  warmupNote: string | null;
  /** Optimizer steps on the rows the preset's quality filter keeps (with the task filter when it is on). */
  steps: number;
  filter: FilterReport;
  /**
   * The task filter (`other_task`), on by default when the preset follows the analysis's single-task
   * advice (recommendedFilter): the task whose conversations are kept; null when it is off.
   */
  keepTask: TaskId | null;
}

export function planPreset(rows: DatasetRow[], request: PresetPlanRequest): PresetPlan {
  const preset = validatePreset(request.preset);
  const options = recommendedFilter(analyzeDataset(rows).recommendation, preset);
  const filter = filterReport(rows, options);
  const uncapped = validateTrainSettings({ ...request.settings, ...preset.training, lora: { ...request.settings.lora, ...preset.lora } });
  const { steps } = plannedSteps(filter.keptRows, uncapped, request.evalDatasetId !== null);
  const warmup = capWarmup(preset, steps);
  return {
    preset,
    settings: { ...uncapped, warmupSteps: warmup.warmupSteps },
    warmupNote: warmup.note,
    steps,
    filter,
    keepTask: options.keepTask ?? null,
  };
}

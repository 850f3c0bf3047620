/**
 * The page: a stepper over eight panels (model, data, settings, training, evaluate, compare,
 * adapters, chat), the state they share and the engine in its worker (`app.engine`).
 *
 * Rendering: a panel watches the slices of state it shows, `app.watch((s) => [s.datasets], render)`,
 * and `render` runs once at once, then only when a selected value changes (`Object.is`), so an
 * update redraws what depends on it and nothing else. Training progress never goes through the
 * state: the training panel draws each step in place. Panels never import each other: they share
 * this state, and a step that starts work another step owns calls `app.act` (see `AppActions`).
 */
import { recommendedFilter } from '../analysis/recommend';
import type { TaskId } from '../analysis/tasks';
import { emptyFilterMessage, type FilterOptions } from '../app/quality-filter';
import { validateTrainSettings, type TrainSettings } from '../train/settings';
import type {
  AdapterSummary,
  DatasetAnalysis,
  DatasetSummary,
  DeviceInfo,
  EvaluationReport,
  FilterReport,
  MemoryEstimate,
  ModelInfo,
  ModelRef,
  Preset,
  RunOutcome,
  RunRecord,
  WebtuneEngineApi,
} from '../app/api';
import type { SharedPreset } from '../site/share-link';
import { el, errorMessage } from './dom';

export interface AppState {
  device: DeviceInfo | null;
  model: ModelInfo | null;
  datasets: DatasetSummary[];
  trainDatasetId: string | null;
  evalDatasetId: string | null;
  settings: TrainSettings;
  /** Why the settings form does not validate; `settings` keeps the last valid values meanwhile. */
  settingsError: string | null;
  estimate: MemoryEstimate | null;
  estimateError: string | null;
  runs: RunRecord[];
  adapters: AdapterSummary[];
  /** The engine is training (the training panel owns the details). */
  training: boolean;
  presets: Preset[];
  /** Task analysis of the chosen training dataset. */
  trainAnalysis: DatasetAnalysis | null;
  /** The applied preset as edited in the settings; null: custom settings and no quality filter. */
  preset: Preset | null;
  /** What the applied preset's quality filter removes from the training dataset. */
  filterReport: FilterReport | null;
  filterError: string | null;
  /**
   * The task filter (rule `other_task`): keep only this task's conversations. On by default when the
   * applied preset follows the analysis's single-task advice; the user can turn it off.
   */
  taskFilter: TaskId | null;
  /** The last evaluation of this session (the evaluate step), for the run report. */
  evaluation: { report: EvaluationReport; adapterId: string | null; datasetId: string } | null;
  /** The last base vs adapter comparison of this session (the compare step), for the run report. */
  comparison: Comparison | null;
}

/** The quality filter a run trains with: the applied preset's bounds and the task filter; null without a preset. */
export function qualityFilter(s: Pick<AppState, 'preset' | 'taskFilter'>): FilterOptions | null {
  return s.preset ? { ...s.preset.filter, keepTask: s.taskFilter } : null;
}

export interface Comparison {
  prompt: string;
  adapterId: string;
  base: string;
  adapted: string;
  maxNewTokens: number;
  temperature: number;
  adapterScale: number;
}

/** Work that one step starts and another step owns: the owner registers it with `handle`, others call `act`. */
export interface AppActions {
  /**
   * Trains on the chosen data with the current settings and preset; '' lets the engine name the run.
   * The outcome, or null when the run failed (the training step says why).
   */
  startRun(name: string): Promise<RunOutcome | null>;
  /** The same in the two phases of progressive training, when the analysis recommends stages. */
  startProgressiveRun(name: string): void;
  /** Loads a model from the Hub or a folder URL, showing its progress in the model step; null when it failed (the step says why). */
  loadModel(ref: ModelRef): Promise<ModelInfo | null>;
  /** Downloads a dataset (`url:…` or `hub:…`), stores its valid rows and chooses it for the role; null when it failed. */
  importDatasetFrom(source: string, role: 'train' | 'eval'): Promise<DatasetSummary | null>;
  /** Fills the settings form with these settings and, when given, applies that preset with these values and filter bounds. */
  applySettings(settings: TrainSettings, preset: SharedPreset | null): void;
  /** Generates the prompt's continuation with the base model and with the newest adapter, side by side. */
  compare(prompt: string): Promise<void>;
}

const STEPS = [
  { id: 'model', title: 'Model' },
  { id: 'data', title: 'Data' },
  { id: 'settings', title: 'Settings' },
  { id: 'training', title: 'Training' },
  { id: 'evaluate', title: 'Evaluate' },
  { id: 'compare', title: 'Compare' },
  { id: 'adapters', title: 'Adapters' },
  { id: 'chat', title: 'Chat' },
] as const;
export type StepId = (typeof STEPS)[number]['id'];

export interface Panel {
  readonly element: HTMLElement;
}

/** Why training cannot start in this state, or null when it can. */
export function startBlocker(s: AppState): string | null {
  if (s.device && s.device.state !== 'ready') return 'WebGPU is not working in this browser (see the badge at the top).';
  if (!s.model) return 'Load a model first (step 1).';
  if (!s.trainDatasetId) return 'Import or choose a training dataset first (step 2).';
  if (s.settingsError) return s.settingsError;
  if (s.filterError) return s.filterError;
  if (s.filterReport?.keptRows === 0) {
    const name = s.datasets.find((d) => d.id === s.trainDatasetId)?.name ?? 'the training data';
    return emptyFilterMessage(s.filterReport, name) ?? 'The quality filter removes every training row; clear the preset.';
  }
  if (s.estimateError) return s.estimateError;
  if (s.estimate && !s.estimate.fits) return s.estimate.problems.join(' ');
  if (s.training) return 'A run is in progress.';
  return null;
}

export class App {
  state: AppState = {
    device: null,
    model: null,
    datasets: [],
    trainDatasetId: null,
    evalDatasetId: null,
    settings: validateTrainSettings({}),
    settingsError: null,
    estimate: null,
    estimateError: null,
    runs: [],
    adapters: [],
    training: false,
    presets: [],
    trainAnalysis: null,
    preset: null,
    filterReport: null,
    filterError: null,
    taskFilter: null,
    evaluation: null,
    comparison: null,
  };
  private readonly watchers: (() => void)[] = [];
  private readonly handlers: Partial<AppActions> = {};
  private readonly nav = el('nav', { class: 'stepper', 'aria-label': 'Steps' });
  private readonly stepButtons = new Map<StepId, { button: HTMLButtonElement; note: HTMLElement }>();
  private readonly panels = new Map<StepId, Panel>();
  private estimateRequest = 0;
  private analysisRequest = 0;
  private filterRequest = 0;

  constructor(readonly engine: WebtuneEngineApi) {
    STEPS.forEach((step, i) => {
      const note = el('span', { class: 'step-note' });
      const button = el(
        'button',
        { type: 'button', class: 'step', 'data-testid': `step-${step.id}`, onclick: () => this.goTo(step.id) },
        el('span', { class: 'step-number' }, String(i + 1)),
        el('span', { class: 'step-text' }, el('span', { class: 'step-title' }, step.title), note),
      );
      this.stepButtons.set(step.id, { button, note });
      this.nav.append(button);
    });
    this.watch(
      (s) => [s.model, s.settings],
      () => void this.refreshEstimate(),
    );
    this.watch(
      (s) => [s.trainDatasetId],
      () => void this.refreshAnalysis(),
    );
    this.watch(
      (s) => [s.trainDatasetId, s.preset?.filter.minResponseChars, s.preset?.filter.maxResponseChars, s.taskFilter],
      () => void this.refreshFilter(),
    );
  }

  update(patch: Partial<AppState>): void {
    this.state = { ...this.state, ...patch };
    for (const watcher of this.watchers) watcher();
  }

  /**
   * Calls `render` with the values `select` picks from the state, now and after every update that
   * changes one of them. `select` may derive values (a count, a message): only a changed result counts.
   */
  watch<T extends unknown[]>(select: (state: AppState) => [...T], render: (...values: NoInfer<T>) => void): void {
    let last = select(this.state);
    render(...last);
    this.watchers.push(() => {
      const next = select(this.state);
      if (next.length === last.length && next.every((value, i) => Object.is(value, last[i]))) return;
      last = next;
      render(...next);
    });
  }

  handle<K extends keyof AppActions>(name: K, handler: AppActions[K]): void {
    this.handlers[name] = handler;
  }

  act<K extends keyof AppActions>(name: K, ...args: Parameters<AppActions[K]>): ReturnType<AppActions[K]> {
    const handler = this.handlers[name] as ((...a: Parameters<AppActions[K]>) => ReturnType<AppActions[K]>) | undefined;
    if (!handler) throw new Error(`No step handles ${name}; main.ts mounts the panel that does.`);
    return handler(...args);
  }

  /** The line under a step's title in the stepper. */
  note(step: StepId, text: string): void {
    const note = this.stepButtons.get(step)!.note;
    if (note.textContent !== text) note.textContent = text;
  }

  /** Mounts the stepper and the panels under `main` and shows the first step. */
  mount(main: HTMLElement, panels: Record<StepId, Panel>): void {
    const content = el('div', { class: 'panels' });
    for (const step of STEPS) {
      const panel = panels[step.id];
      this.panels.set(step.id, panel);
      panel.element.dataset.step = step.id;
      content.append(panel.element);
    }
    main.append(this.nav, content);
    this.goTo('model');
  }

  goTo(step: StepId): void {
    for (const [id, panel] of this.panels) panel.element.hidden = id !== step;
    for (const [id, { button }] of this.stepButtons) button.setAttribute('aria-current', id === step ? 'step' : 'false');
  }

  async refreshDatasets(): Promise<void> {
    const datasets = await this.engine.listDatasets();
    const ids = new Set(datasets.map((d) => d.id));
    this.update({
      datasets,
      trainDatasetId: this.state.trainDatasetId && ids.has(this.state.trainDatasetId) ? this.state.trainDatasetId : null,
      evalDatasetId: this.state.evalDatasetId && ids.has(this.state.evalDatasetId) ? this.state.evalDatasetId : null,
    });
  }

  async refreshRuns(): Promise<void> {
    this.update({ runs: await this.engine.listRuns() });
  }

  async refreshAdapters(): Promise<void> {
    this.update({ adapters: await this.engine.listAdapters() });
  }

  private async refreshAnalysis(): Promise<void> {
    const request = ++this.analysisRequest;
    const id = this.state.trainDatasetId;
    // A dataset deleted meanwhile has nothing to analyse; refreshDatasets clears the choice.
    const trainAnalysis = id ? await this.engine.analyzeDataset(id).catch(() => null) : null;
    if (request !== this.analysisRequest) return;
    // Other data, other advice: an applied preset gets the task filter the new analysis gives it.
    const { preset } = this.state;
    this.update({
      trainAnalysis,
      taskFilter: trainAnalysis && preset ? (recommendedFilter(trainAnalysis.recommendation, preset).keepTask ?? null) : null,
    });
  }

  /** The filter report follows the training dataset and the filter bounds; stale answers are dropped. */
  private async refreshFilter(): Promise<void> {
    const request = ++this.filterRequest;
    const { trainDatasetId } = this.state;
    const filter = qualityFilter(this.state);
    if (!trainDatasetId || !filter) {
      this.update({ filterReport: null, filterError: null });
      return;
    }
    try {
      const filterReport = await this.engine.previewFilter(trainDatasetId, filter);
      if (request === this.filterRequest) this.update({ filterReport, filterError: null });
    } catch (error) {
      if (request === this.filterRequest) this.update({ filterReport: null, filterError: errorMessage(error) });
    }
  }

  /** Asks the worker for the memory figures of the current model and settings; stale answers are dropped. */
  private async refreshEstimate(): Promise<void> {
    const request = ++this.estimateRequest;
    if (!this.state.model) return;
    try {
      const estimate = await this.engine.estimateMemory(this.state.settings);
      if (request === this.estimateRequest) this.update({ estimate, estimateError: null });
    } catch (error) {
      if (request === this.estimateRequest) this.update({ estimate: null, estimateError: errorMessage(error) });
    }
  }
}

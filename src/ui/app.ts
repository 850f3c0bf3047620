/**
 * The page: a header with the WebGPU badge, a stepper over seven panels (model, data, settings,
 * training, evaluate, compare, adapters) and the state they share. All engine work happens in the worker
 * behind `app.engine`; every panel re-renders from the shared state whenever it changes.
 */
import { validateTrainSettings, type TrainSettings } from '../train/settings';
import type {
  AdapterSummary,
  DatasetAnalysis,
  DatasetSummary,
  DeviceInfo,
  FilterReport,
  MemoryEstimate,
  ModelInfo,
  Preset,
  RunRecord,
  WebtuneEngineApi,
} from '../worker/api';
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
  /** The engine is training (the run panel owns the details). */
  training: boolean;
  presets: Preset[];
  /** Task analysis of the chosen training dataset. */
  trainAnalysis: DatasetAnalysis | null;
  /** The applied preset as edited in the settings; null: custom settings and no quality filter. */
  preset: Preset | null;
  /** What the applied preset's quality filter removes from the training dataset. */
  filterReport: FilterReport | null;
  filterError: string | null;
}

const STEPS = [
  { id: 'model', title: 'Model' },
  { id: 'data', title: 'Data' },
  { id: 'settings', title: 'Settings' },
  { id: 'training', title: 'Training' },
  { id: 'evaluate', title: 'Evaluate' },
  { id: 'compare', title: 'Compare' },
  { id: 'adapters', title: 'Adapters' },
] as const;
export type StepId = (typeof STEPS)[number]['id'];

export interface Panel {
  readonly element: HTMLElement;
  /** One line under the step's title in the stepper. */
  summary(state: AppState): string;
  render(state: AppState): void;
}

type Listener = (state: AppState) => void;

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
  };
  private readonly listeners: Listener[] = [];
  private readonly stepButtons = new Map<StepId, { button: HTMLButtonElement; note: HTMLElement }>();
  private readonly panels = new Map<StepId, Panel>();
  private estimateRequest = 0;
  private analysisRequest = 0;
  private filterRequest = 0;

  constructor(readonly engine: WebtuneEngineApi) {}

  update(patch: Partial<AppState>): void {
    const before = this.state;
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener(this.state);
    if ('model' in patch || 'settings' in patch) void this.refreshEstimate();
    const datasetChanged = before.trainDatasetId !== this.state.trainDatasetId;
    if (datasetChanged) void this.refreshAnalysis();
    if (datasetChanged || !sameFilter(before.preset, this.state.preset)) void this.refreshFilter();
  }

  subscribe(listener: Listener): void {
    this.listeners.push(listener);
    listener(this.state);
  }

  /** Builds the stepper and mounts the panels under `main`. */
  mount(main: HTMLElement, panels: Record<StepId, Panel>): void {
    const nav = el('nav', { class: 'stepper', 'aria-label': 'Steps' });
    STEPS.forEach((step, i) => {
      const note = el('span', { class: 'step-note' });
      const button = el(
        'button',
        { type: 'button', class: 'step', 'data-testid': `step-${step.id}`, onclick: () => this.goTo(step.id) },
        el('span', { class: 'step-number' }, String(i + 1)),
        el('span', { class: 'step-text' }, el('span', { class: 'step-title' }, step.title), note),
      );
      this.stepButtons.set(step.id, { button, note });
      nav.append(button);
    });
    const content = el('div', { class: 'panels' });
    for (const step of STEPS) {
      const panel = panels[step.id];
      this.panels.set(step.id, panel);
      panel.element.dataset.step = step.id;
      content.append(panel.element);
    }
    main.append(nav, content);
    this.subscribe((state) => {
      for (const [id, panel] of this.panels) {
        panel.render(state);
        this.stepButtons.get(id)!.note.textContent = panel.summary(state);
      }
    });
    this.goTo('model');
  }

  goTo(step: StepId): void {
    for (const [id, panel] of this.panels) panel.element.hidden = id !== step;
    for (const [id, { button }] of this.stepButtons) button.setAttribute('aria-current', id === step ? 'step' : 'false');
  }

  /** Why training cannot start now, or null when it can. */
  startBlocker(): string | null {
    const s = this.state;
    if (s.device && s.device.state !== 'ready') return 'WebGPU is not working in this browser (see the badge at the top).';
    if (!s.model) return 'Load a model first (step 1).';
    if (!s.trainDatasetId) return 'Import or choose a training dataset first (step 2).';
    if (s.settingsError) return s.settingsError;
    if (s.filterError) return s.filterError;
    if (s.filterReport?.keptRows === 0) return 'The quality filter removes every training row; widen the response length bounds or clear the preset.';
    if (s.estimateError) return s.estimateError;
    if (s.estimate && !s.estimate.fits) return s.estimate.problems.join(' ');
    if (s.training) return 'A run is in progress.';
    return null;
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
    if (request === this.analysisRequest) this.update({ trainAnalysis });
  }

  /** The filter report follows the training dataset and the filter bounds; stale answers are dropped. */
  private async refreshFilter(): Promise<void> {
    const request = ++this.filterRequest;
    const { trainDatasetId, preset } = this.state;
    if (!trainDatasetId || !preset) {
      this.update({ filterReport: null, filterError: null });
      return;
    }
    try {
      const filterReport = await this.engine.previewFilter(trainDatasetId, preset.filter);
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
      if (request !== this.estimateRequest) return;
      this.state = { ...this.state, estimate, estimateError: null };
    } catch (error) {
      if (request !== this.estimateRequest) return;
      this.state = { ...this.state, estimate: null, estimateError: errorMessage(error) };
    }
    for (const listener of this.listeners) listener(this.state);
  }
}

function sameFilter(a: Preset | null, b: Preset | null): boolean {
  return a?.filter.minResponseChars === b?.filter.minResponseChars && a?.filter.maxResponseChars === b?.filter.maxResponseChars;
}

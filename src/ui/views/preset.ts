/**
 * The preset part of the settings step: the presets of presets/presets.json with the one the
 * training data's analysis recommends preselected. Applying one asks the engine for its plan on the
 * chosen data (warmup capped to the run, quality filter report) and fills the settings with it;
 * the settings form then edits the applied preset.
 */
import type { Preset, PresetPlan, TrainSettings } from '../../app/api';
import type { App, AppState } from '../app';
import { el, errorMessage, Notice } from '../dom';
import { STRATEGY_LABELS } from './analysis';

export class PresetSection {
  readonly element: HTMLElement;
  private readonly notice = new Notice('preset-error');
  private readonly select = el('select', { 'data-testid': 'preset-select', 'aria-label': 'Preset' });
  private readonly applyButton = el('button', { type: 'button', 'data-testid': 'preset-apply' }, 'Apply preset');
  private readonly recommendation = el('p', { 'data-testid': 'preset-recommendation' });
  private readonly why = el('p', { class: 'muted small', 'data-testid': 'preset-why' });
  private readonly applied = el('p', { class: 'small', 'data-testid': 'preset-applied' });
  private readonly warmupNote = el('p', { class: 'notice', 'data-kind': 'warn', 'data-testid': 'warmup-note', hidden: true });
  /** The user's pick; null follows the recommendation. */
  private chosen: string | null = null;
  private busy = false;

  constructor(
    private readonly app: App,
    private readonly onApplied: (plan: PresetPlan) => void,
  ) {
    this.select.addEventListener('change', () => {
      this.chosen = this.select.value;
      this.renderChoice();
    });
    this.applyButton.addEventListener('click', () => void this.apply());
    this.element = el(
      'fieldset',
      { class: 'preset', 'data-testid': 'preset-panel' },
      el('legend', {}, 'Preset'),
      this.recommendation,
      el('div', { class: 'inline' }, this.select, this.applyButton),
      this.why,
      this.applied,
      this.warmupNote,
      this.notice.element,
    );
    this.watchState(app);
  }

  private watchState(app: App): void {
    const recommendationOf = (s: AppState) => s.trainAnalysis?.recommendation ?? null;
    app.watch(
      (s) => [s.presets, recommendationOf(s)?.presetIds[0] ?? null],
      (presets, recommended) => {
        this.select.replaceChildren(
          el('option', { value: '' }, 'None: custom settings, no quality filter'),
          ...presets.map((p) => el('option', { value: p.id }, `${p.id}${p.id === recommended ? ' (recommended)' : ''}: ${p.label}`)),
        );
        this.renderChoice();
      },
    );
    app.watch(
      (s) => [recommendationOf(s), s.trainDatasetId !== null],
      (recommendation, hasDataset) => {
        if (!recommendation) {
          this.recommendation.textContent = hasDataset
            ? 'Analysing the training data…'
            : 'Choose a training dataset in step 2 to get a recommended preset.';
          return;
        }
        const stages = recommendation.strategy === 'progressive' ? ` in stages: ${recommendation.presetIds.join(' → ')}` : '';
        this.recommendation.replaceChildren(
          'The training data suggests ',
          el('strong', {}, STRATEGY_LABELS[recommendation.strategy]),
          recommendation.presetIds.length ? ` with the ${recommendation.presetIds[0]} preset${stages}.` : '.',
        );
      },
    );
    app.watch(
      (s) => [s.preset?.id ?? null],
      (id) => {
        this.applied.textContent = id
          ? `Applied: ${id}. The fields below hold its values; ` +
            'edits are checked against the preset rules, and its quality filter runs before training.'
          : 'No preset applied: the settings below are used as they are, without a quality filter.';
        this.applied.dataset.preset = id ?? '';
      },
    );
    app.watch(
      (s) => [s.training, s.trainDatasetId],
      () => this.renderButton(),
    );
  }

  /** The user's pick, or the recommended preset until the user picks one, and why it exists. */
  private renderChoice(): void {
    const { presets, trainAnalysis } = this.app.state;
    this.select.value = this.chosen ?? trainAnalysis?.recommendation.presetIds[0] ?? '';
    this.why.textContent = presets.find((p) => p.id === this.select.value)?.why ?? '';
  }

  private renderButton(): void {
    const { training, trainDatasetId } = this.app.state;
    const blocker = training ? 'A run is in progress.' : !trainDatasetId ? 'Choose a training dataset in step 2 first.' : null;
    this.applyButton.disabled = this.busy || blocker !== null;
    this.applyButton.title = blocker ?? '';
  }

  private async apply(): Promise<void> {
    const state = this.app.state;
    const preset = state.presets.find((p) => p.id === this.select.value);
    this.notice.clear();
    this.warmupNote.hidden = true;
    if (!preset) {
      this.app.update({ preset: null });
      return;
    }
    if (!state.trainDatasetId) return;
    this.busy = true;
    this.renderButton();
    try {
      const plan = await this.app.engine.planPreset({
        datasetId: state.trainDatasetId,
        evalDatasetId: state.evalDatasetId,
        preset,
        settings: state.settings,
      });
      this.warmupNote.textContent = plan.warmupNote ? `Note: ${plan.warmupNote}.` : '';
      this.warmupNote.hidden = !plan.warmupNote;
      this.onApplied(plan);
    } catch (error) {
      this.notice.show(errorMessage(error));
    } finally {
      this.busy = false;
      this.renderButton();
    }
  }
}

/** A preset edited to hold exactly these settings and filter bounds (a share link's preset and values). */
export function presetWith(preset: Preset, s: TrainSettings, filter: Preset['filter']): Preset {
  const { useRslora: _, ...lora } = s.lora;
  const { lr, epochs, warmupSteps, batchSize, gradAccum, maxLength, schedule, weightDecay, maxGradNorm } = s;
  return {
    ...preset,
    lora,
    training: { lr, epochs, warmupSteps, batchSize, gradAccum, maxLength, schedule, weightDecay, maxGradNorm },
    filter,
  };
}

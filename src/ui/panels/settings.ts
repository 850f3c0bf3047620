import { type Preset, validatePreset } from '../../analysis/presets';
import { LORA_TARGETS } from '../../lora/config';
import { validateTrainSettings, type TrainSettings } from '../../train/settings';
import type { PresetPlan } from '../../app/api';
import { plannedSteps } from '../../app/run-plan';
import { startBlocker, type App, type AppState, type Panel } from '../app';
import { el, errorMessage, panelHeader } from '../dom';
import { filterReportView } from '../views/filter-report';
import { memoryView } from '../views/memory';
import { PresetSection, presetWith } from '../views/preset';
import { taskFilterView } from '../views/task-filter';
import type { SharedPreset } from '../../site/share-link';

type NumberKey = Exclude<{ [K in keyof TrainSettings]: TrainSettings[K] extends number ? K : never }[keyof TrainSettings], undefined>;

interface NumberField {
  key: NumberKey | 'r' | 'alpha' | 'dropout';
  label: string;
  hint: string;
  step?: string;
}

/** The form's fieldsets; each also holds the controls of its `id` that are not numbers (see `groupExtras`). */
type GroupId = 'lora' | 'optimizer' | 'data' | 'memory';

const GROUPS: { id: GroupId; title: string; fields: NumberField[] }[] = [
  {
    id: 'lora',
    title: 'LoRA',
    fields: [
      { key: 'r', label: 'Rank r', hint: 'Size of the update matrices; 8–16 is typical.' },
      { key: 'alpha', label: 'Alpha', hint: 'Scale = alpha / r; 2 × r is a common choice.' },
      { key: 'dropout', label: 'Dropout', hint: 'On the adapter input while training (0–0.1).', step: '0.01' },
    ],
  },
  {
    id: 'optimizer',
    title: 'Optimizer',
    fields: [
      { key: 'lr', label: 'Learning rate', hint: 'Peak, after warmup. LoRA likes 1e-4 to 5e-3.', step: 'any' },
      { key: 'epochs', label: 'Epochs', hint: 'Passes over the training rows.' },
      { key: 'batchSize', label: 'Batch size', hint: 'Sequences per micro-batch (memory grows with it).' },
      { key: 'gradAccum', label: 'Gradient accumulation', hint: 'Micro-batches per optimizer step.' },
      { key: 'warmupSteps', label: 'Warmup steps', hint: 'Linear ramp of the learning rate from 0.' },
      { key: 'weightDecay', label: 'Weight decay', hint: 'Decoupled AdamW decay.', step: 'any' },
      { key: 'maxGradNorm', label: 'Max gradient norm', hint: 'Global clipping; 0 turns it off.', step: 'any' },
    ],
  },
  {
    id: 'data',
    title: 'Data and schedule',
    fields: [
      { key: 'maxLength', label: 'Max length', hint: 'Tokens per example; longer ones are cut.' },
      {
        key: 'evalFraction',
        label: 'Held-out share',
        hint: 'Eval rows taken from the training data when no eval set is chosen.',
        step: '0.05',
      },
      { key: 'evalEvery', label: 'Evaluate every', hint: 'Optimizer steps between eval losses (0: only at the end).' },
      { key: 'checkpointEvery', label: 'Checkpoint every', hint: 'Steps between saved checkpoints (0: only at the end).' },
      { key: 'seed', label: 'Seed', hint: 'Data order, dropout and adapter initialisation.' },
    ],
  },
  { id: 'memory', title: 'GPU memory', fields: [] },
];

export class SettingsPanel implements Panel {
  readonly element: HTMLElement;
  private readonly inputs = new Map<string, HTMLInputElement>();
  private readonly targets = new Map<string, HTMLInputElement>();
  private readonly schedule = el(
    'select',
    { 'data-testid': 'setting-schedule' },
    ...['linear', 'cosine', 'constant'].map((s) => el('option', { value: s }, s)),
  );
  private readonly rslora = el('input', { type: 'checkbox', 'data-testid': 'setting-rslora' });
  private readonly recompute = el(
    'select',
    { 'data-testid': 'setting-recompute' },
    el('option', { value: 'auto' }, 'automatic'),
    el('option', { value: 'on' }, 'on'),
    el('option', { value: 'off' }, 'off'),
  );
  private readonly memoryBudget = el('input', {
    type: 'number',
    step: 'any',
    min: '0',
    placeholder: "the device's",
    'data-testid': 'setting-memoryBudget',
  });
  private readonly packing = el('input', { type: 'checkbox', 'data-testid': 'setting-packing' });
  private readonly runName = el('input', { type: 'text', 'data-testid': 'run-name' });
  private readonly problem = el('p', { class: 'notice', 'data-kind': 'error', 'data-testid': 'settings-error', hidden: true });
  private readonly plan = el('p', { class: 'plan', 'data-testid': 'run-plan' });
  private readonly memory = el('div');
  private readonly startButton = el('button', { type: 'button', class: 'primary', 'data-testid': 'start-training' }, 'Start training');
  private readonly progressiveButton = el(
    'button',
    { type: 'button', 'data-testid': 'start-progressive', hidden: true },
    'Train progressively',
  );
  private readonly progressiveNote = el('p', { class: 'muted small', 'data-testid': 'progressive-plan', hidden: true });
  private readonly presetSection: PresetSection;
  private readonly minChars = el('input', { type: 'number', step: '1', min: '0', 'data-testid': 'setting-minResponseChars' });
  private readonly maxChars = el('input', { type: 'number', step: '1', min: '1', 'data-testid': 'setting-maxResponseChars' });
  private readonly filterSet: HTMLFieldSetElement;
  private readonly filterReport = el('div');

  constructor(private readonly app: App) {
    const s = app.state.settings;
    const groups = GROUPS.map((group) => {
      const fields = group.fields.map((f) => {
        const input = el('input', {
          type: 'number',
          step: f.step ?? '1',
          min: '0',
          'data-testid': `setting-${f.key}`,
          value: String(this.current(s, f.key)),
        });
        input.addEventListener('input', () => this.read());
        this.inputs.set(f.key, input);
        return el('label', { class: 'field' }, el('span', { class: 'field-label' }, f.label), input, el('span', { class: 'hint' }, f.hint));
      });
      return el('fieldset', {}, el('legend', {}, group.title), el('div', { class: 'fields' }, ...fields, ...this.groupExtras(group.id, s)));
    });
    for (const control of [this.schedule, this.rslora, this.packing, this.recompute]) control.addEventListener('change', () => this.read());
    for (const input of [this.minChars, this.maxChars, this.memoryBudget]) input.addEventListener('input', () => this.read());
    this.presetSection = new PresetSection(app, (plan) => this.applyPlan(plan));
    this.filterSet = el(
      'fieldset',
      { 'data-testid': 'quality-filter', hidden: true },
      el('legend', {}, 'Quality filter'),
      el(
        'div',
        { class: 'fields' },
        el(
          'label',
          { class: 'field' },
          el('span', { class: 'field-label' }, 'Min response characters'),
          this.minChars,
          el('span', { class: 'hint' }, 'Shorter assistant turns remove the row.'),
        ),
        el(
          'label',
          { class: 'field' },
          el('span', { class: 'field-label' }, 'Max response characters'),
          this.maxChars,
          el('span', { class: 'hint' }, 'Longer assistant turns remove the row.'),
        ),
        taskFilterView(app),
      ),
      this.filterReport,
    );
    this.startButton.addEventListener('click', () => void app.act('startRun', this.runName.value.trim()));
    this.progressiveButton.addEventListener('click', () => app.act('startProgressiveRun', this.runName.value.trim()));

    this.element = el(
      'section',
      { class: 'panel' },
      panelHeader('Settings', 'Defaults follow PEFT and the Hugging Face Trainer.'),
      el('form', { class: 'settings', onsubmit: (e: Event) => e.preventDefault() }, this.presetSection.element, ...groups, this.filterSet),
      el(
        'label',
        { class: 'field' },
        el('span', { class: 'field-label' }, 'Run name'),
        this.runName,
        el('span', { class: 'hint' }, "Also the adapter's name. Left empty, it is named after the model and the dataset."),
      ),
      this.problem,
      this.plan,
      this.memory,
      this.progressiveNote,
      el('div', { class: 'actions' }, this.progressiveButton, this.startButton),
    );
    app.handle('applySettings', (settings, preset) => this.applySettings(settings, preset));
    this.watchState(app);
  }

  private watchState(app: App): void {
    app.watch(
      (s) => [s.settings.lora.r, s.settings.epochs],
      (r, epochs) => app.note('settings', `r ${r} · ${epochs} ep`),
    );
    app.watch(
      (s) => [s.preset === null],
      (none) => (this.filterSet.hidden = none),
    );
    // Redrawn only when the report changes, so rows the user opened stay open.
    app.watch(
      (s) => [s.filterReport, s.filterError, s.trainDatasetId !== null, s.datasets.find((d) => d.id === s.trainDatasetId)?.name],
      (report, error, hasDataset, name) =>
        this.filterReport.replaceChildren(
          error
            ? el('p', { class: 'notice', 'data-kind': 'error' }, error)
            : report
              ? filterReportView(report, name)
              : el(
                  'p',
                  { class: 'muted' },
                  hasDataset ? 'Filtering the training rows…' : 'Choose a training dataset in step 2 to see what the filter removes.',
                ),
        ),
    );
    app.watch(
      (s) => [s.settingsError],
      (error) => {
        this.problem.textContent = error ?? '';
        this.problem.hidden = !error;
      },
    );
    app.watch(
      (s) => [s.model, s.estimate, s.estimateError],
      (model, estimate, error) => this.memory.replaceChildren(memoryView(model ? estimate : null, model ? error : null)),
    );
    app.watch(
      (s) => [startBlocker(s)],
      (blocker) => {
        this.startButton.disabled = blocker !== null;
        this.startButton.title = blocker ?? '';
        this.progressiveButton.disabled = blocker !== null;
      },
    );
    app.watch(
      (s) => [s.trainAnalysis?.recommendation ?? null],
      (recommendation) => {
        const progressive = recommendation?.strategy === 'progressive';
        this.progressiveButton.hidden = !progressive;
        this.progressiveNote.hidden = !progressive;
        if (!progressive) return;
        this.progressiveNote.textContent =
          `The analysis recommends stages. Progressive training runs two phases with these settings: phase 1 on the ` +
          `${recommendation.tasks.slice(0, -1).join(', ')} rows (and those of tasks too small for a stage), ` +
          `then phase 2 on the ${recommendation.tasks.at(-1)} rows, ` +
          'continuing the phase-1 adapter, with a report of how much phase 2 made it forget of phase 1.';
      },
    );
    app.watch(
      (s) => [planText(s)],
      (text) => (this.plan.textContent = text),
    );
  }

  /** The controls of a fieldset that are not number fields, set to `s`. */
  private groupExtras(id: GroupId, s: TrainSettings): HTMLElement[] {
    switch (id) {
      case 'lora': {
        const boxes = LORA_TARGETS.map((target) => {
          const checked = s.lora.targets.includes(target);
          const box = el('input', { type: 'checkbox', value: target, checked, 'data-testid': `target-${target}` });
          box.addEventListener('change', () => this.read());
          this.targets.set(target, box);
          return el('label', { class: 'check' }, box, target);
        });
        this.rslora.checked = s.lora.useRslora;
        return [
          el(
            'div',
            { class: 'field wide' },
            el('span', { class: 'field-label' }, 'Adapted projections'),
            el('div', { class: 'checks' }, ...boxes),
          ),
          el('label', { class: 'check' }, this.rslora, 'rsLoRA (scale by alpha / √r)'),
        ];
      }
      case 'optimizer':
        this.schedule.value = s.schedule;
        return [
          el(
            'label',
            { class: 'field' },
            el('span', { class: 'field-label' }, 'Schedule'),
            this.schedule,
            el('span', { class: 'hint' }, 'Decay after warmup.'),
          ),
        ];
      case 'data':
        this.packing.checked = s.packing;
        return [el('label', { class: 'check' }, this.packing, 'Pack short examples into full rows')];
      case 'memory':
        this.setMemoryControls(s);
        return [
          el(
            'label',
            { class: 'field' },
            el('span', { class: 'field-label' }, 'Activation recomputation'),
            this.recompute,
            el('span', { class: 'hint' }, 'Recompute each layer in backward: same result, far less memory, about a third more compute.'),
          ),
          el(
            'label',
            { class: 'field' },
            el('span', { class: 'field-label' }, 'Memory budget (GiB)'),
            this.memoryBudget,
            el('span', { class: 'hint' }, 'What automatic recomputation plans for. Empty: what the device reports, else 4 GiB.'),
          ),
        ];
    }
  }

  /** Fills the form with an applied preset's plan; from here on the form edits that preset. */
  private applyPlan(plan: PresetPlan): void {
    const s = plan.settings;
    this.fill(s, plan.preset.filter);
    this.app.update({
      settings: s,
      settingsError: null,
      preset: { ...plan.preset, training: { ...plan.preset.training, warmupSteps: s.warmupSteps } },
      taskFilter: plan.keepTask,
    });
  }

  /** Settings from a setup (share link, demo): the form shows them, and a named preset is applied with these very values. */
  private applySettings(s: TrainSettings, shared: SharedPreset | null): void {
    const found = shared ? this.app.state.presets.find((p) => p.id === shared.id) : undefined;
    if (shared && !found) throw new Error(`this webtune has no preset "${shared.id}"; the settings were not changed`);
    const filter = shared ? { minResponseChars: shared.minResponseChars, maxResponseChars: shared.maxResponseChars } : null;
    this.fill(s, filter);
    const preset = found ? presetWith(found, s, filter!) : null;
    this.app.update({ settings: s, settingsError: null, preset });
  }

  private fill(s: TrainSettings, filter: Preset['filter'] | null): void {
    for (const [key, input] of this.inputs) input.value = String(this.current(s, key as NumberField['key']));
    for (const [target, box] of this.targets) box.checked = (s.lora.targets as string[]).includes(target);
    this.schedule.value = s.schedule;
    this.rslora.checked = s.lora.useRslora;
    this.packing.checked = s.packing;
    this.setMemoryControls(s);
    if (filter) {
      this.minChars.value = String(filter.minResponseChars);
      this.maxChars.value = String(filter.maxResponseChars);
    }
  }

  private setMemoryControls(s: TrainSettings): void {
    this.recompute.value = s.recompute;
    this.memoryBudget.value = s.memoryBudget === null ? '' : String(s.memoryBudget / 2 ** 30);
  }

  private current(s: TrainSettings, key: NumberField['key']): number {
    if (key === 'r' || key === 'alpha' || key === 'dropout') return s.lora[key];
    return s[key];
  }

  /** Validates the whole form; valid settings replace the app's, invalid ones only report why. */
  private read(): void {
    const value = (key: string) => {
      const text = this.inputs.get(key)!.value.trim();
      return text === '' ? Number.NaN : Number(text);
    };
    const lora = {
      r: value('r'),
      alpha: value('alpha'),
      dropout: value('dropout'),
      targets: LORA_TARGETS.filter((t) => this.targets.get(t)!.checked),
    };
    const training = {
      lr: value('lr'),
      epochs: value('epochs'),
      warmupSteps: value('warmupSteps'),
      batchSize: value('batchSize'),
      gradAccum: value('gradAccum'),
      maxLength: value('maxLength'),
      schedule: this.schedule.value as TrainSettings['schedule'],
      weightDecay: value('weightDecay'),
      maxGradNorm: value('maxGradNorm'),
    };
    try {
      const applied = this.app.state.preset;
      // An applied preset is checked by the presets file's rules, so the error names the preset field.
      const preset: Preset | null = applied
        ? validatePreset({
            id: applied.id,
            label: applied.label,
            why: applied.why,
            lora,
            training,
            filter: { minResponseChars: this.minChars.valueAsNumber, maxResponseChars: this.maxChars.valueAsNumber },
          })
        : null;
      const settings = validateTrainSettings({
        ...training,
        lora: { ...lora, useRslora: this.rslora.checked },
        packing: this.packing.checked,
        evalFraction: value('evalFraction'),
        evalEvery: value('evalEvery'),
        checkpointEvery: value('checkpointEvery'),
        seed: value('seed'),
        recompute: this.recompute.value as TrainSettings['recompute'],
        memoryBudget: this.memoryBudget.value.trim() === '' ? null : Math.round(Number(this.memoryBudget.value) * 2 ** 30),
      });
      this.app.update({ settings, preset, settingsError: null });
    } catch (error) {
      this.app.update({ settingsError: errorMessage(error) });
    }
  }
}

/** How many rows and steps the run will have, and why it cannot start yet when it cannot. */
function planText(state: AppState): string {
  const blocker = startBlocker(state);
  const train = state.datasets.find((d) => d.id === state.trainDatasetId);
  if (!train) return blocker ?? '';
  const s = state.settings;
  const filtered = state.preset && state.filterReport ? state.filterReport.keptRows : null;
  const { trainRows, steps } = plannedSteps(filtered ?? train.rowCount, s, state.evalDatasetId !== null);
  const stepsPerEpoch = steps / s.epochs;
  // A memory refusal is already spelled out in the estimate below the plan.
  const refusedByEstimate = state.estimate !== null && !state.estimate.fits;
  return (
    `${trainRows} training rows${filtered === null ? '' : ' after the quality filter'}, ` +
    `${s.batchSize} × ${s.gradAccum} sequences per step: ` +
    `about ${stepsPerEpoch} step${stepsPerEpoch === 1 ? '' : 's'} per epoch, ` +
    `${steps} in all (rows without anything to learn after tokenizing are dropped).` +
    (blocker && !refusedByEstimate ? ` ${blocker}` : '')
  );
}

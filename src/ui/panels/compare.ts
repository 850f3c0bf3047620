import type { AdapterSummary, ModelInfo } from '../../app/api';
import type { App, Panel } from '../app';
import { el, errorMessage, Notice, panelHeader } from '../dom';
import { ReportButtons } from '../views/report';

const DEFAULT_PROMPT = 'Once upon a time, there was a little';

export class ComparePanel implements Panel {
  readonly element: HTMLElement;
  private readonly notice = new Notice('compare-error');
  private readonly prompt = el('textarea', { rows: 3, 'data-testid': 'compare-prompt', 'aria-label': 'Prompt' }, DEFAULT_PROMPT);
  private readonly adapterSelect = el('select', { 'data-testid': 'compare-adapter' });
  private readonly maxTokens = el('input', { type: 'number', min: 1, max: 512, value: 32, 'data-testid': 'compare-max-tokens' });
  private readonly temperature = el('input', { type: 'number', min: 0, step: 0.1, value: 0, 'data-testid': 'compare-temperature' });
  private readonly adapterOn = el('input', { type: 'checkbox', checked: true, 'data-testid': 'compare-adapter-on' });
  private readonly adapterScale = el('input', { type: 'number', min: 0, step: 0.1, value: 1, 'data-testid': 'compare-adapter-scale' });
  private readonly button = el('button', { type: 'button', class: 'primary', 'data-testid': 'compare-generate' }, 'Generate both');
  private readonly base = el('div', { class: 'output', 'data-testid': 'compare-base' });
  private readonly adapted = el('div', { class: 'output', 'data-testid': 'compare-adapted' });
  private readonly baseMeta = el('span', { class: 'muted small' });
  private readonly adaptedMeta = el('span', { class: 'muted small' });
  private busy = false;
  private chosen: string | null = null;

  constructor(private readonly app: App) {
    this.adapterSelect.addEventListener('change', () => {
      this.chosen = this.adapterSelect.value || null;
      this.renderButton();
    });
    this.button.addEventListener('click', () => void this.compare());
    this.adapterOn.addEventListener('change', () => (this.adapterScale.disabled = !this.adapterOn.checked));
    this.element = el(
      'section',
      { class: 'panel' },
      panelHeader('Compare', 'The same prompt through the base model and through the base model with an adapter.'),
      el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Prompt'), this.prompt),
      el(
        'div',
        { class: 'fields three' },
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Adapter'), this.adapterSelect),
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'New tokens'), this.maxTokens),
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Temperature (0: greedy)'), this.temperature),
      ),
      el(
        'div',
        { class: 'inline' },
        el('label', { class: 'check' }, this.adapterOn, 'Adapter on'),
        el(
          'label',
          { class: 'field' },
          el('span', { class: 'field-label' }, 'Adapter scale (1: as trained)'),
          this.adapterScale,
          el('span', { class: 'hint' }, 'Multiplies the LoRA scaling at generation time; the stored adapter is not changed.'),
        ),
      ),
      el('div', { class: 'actions' }, this.button),
      this.notice.element,
      el(
        'div',
        { class: 'grid-2 outputs' },
        el('div', {}, el('h3', {}, 'Base model ', this.baseMeta), this.base),
        el('div', {}, el('h3', {}, 'With adapter ', this.adaptedMeta), this.adapted),
      ),
      new ReportButtons(app).element,
    );
    app.handle('compare', (prompt) => {
      this.prompt.value = prompt;
      this.chosen = app.state.adapters.find((a) => a.baseModel === app.state.model?.name)?.id ?? null;
      this.adapterSelect.value = this.chosen ?? '';
      return this.compare();
    });
    app.watch(
      (s) => [s.adapters.length > 0],
      (any) => app.note('compare', any ? 'Base vs adapter' : 'After training'),
    );
    app.watch(
      (s) => [s.adapters, s.model],
      (adapters, model) => this.renderAdapters(adapters, model),
    );
    app.watch(
      (s) => [s.training],
      () => this.renderButton(),
    );
  }

  private renderAdapters(adapters: AdapterSummary[], model: ModelInfo | null): void {
    const usable = adapters.filter((a) => a.baseModel === model?.name);
    if (!usable.some((a) => a.id === this.chosen)) this.chosen = usable[0]?.id ?? null;
    this.adapterSelect.replaceChildren(
      ...usable.map((a) => el('option', { value: a.id }, `${a.name} (eval ${a.finalEvalLoss?.toFixed(3) ?? '—'})`)),
    );
    if (usable.length === 0) {
      this.adapterSelect.append(el('option', { value: '' }, model ? 'No adapter for this model yet' : 'Load a model first'));
    }
    this.adapterSelect.value = this.chosen ?? '';
    this.renderButton();
  }

  private renderButton(): void {
    const { training, model } = this.app.state;
    this.button.disabled = this.busy || training || !model || !this.chosen;
    this.button.title = training ? 'The GPU is busy training; pause or wait for the run to finish.' : '';
  }

  private async compare(): Promise<void> {
    if (!this.chosen) return;
    const maxNewTokens = Number(this.maxTokens.value);
    const temperature = Number(this.temperature.value);
    const scale = Number(this.adapterScale.value);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1 || !(temperature >= 0)) {
      this.notice.show('New tokens must be a whole number of at least 1 and the temperature 0 or more.');
      return;
    }
    if (this.adapterScale.value.trim() === '' || !Number.isFinite(scale) || scale < 0) {
      this.notice.show('The adapter scale must be a number of 0 or more (1: as trained, 0: off).');
      return;
    }
    const adapterScale = this.adapterOn.checked ? scale : 0;
    this.busy = true;
    this.notice.clear();
    this.renderButton();
    const request = { prompt: this.prompt.value, maxNewTokens, temperature };
    const adapterId = this.chosen;
    const texts: string[] = [];
    try {
      for (const [target, meta, adapterId] of [
        [this.base, this.baseMeta, null],
        [this.adapted, this.adaptedMeta, this.chosen],
      ] as const) {
        const strength =
          adapterId === null ? '' : adapterScale === 0 ? ' · adapter off' : adapterScale === 1 ? '' : ` · scale ${adapterScale}`;
        target.dataset.state = 'running';
        target.replaceChildren(el('span', { class: 'prompt-echo' }, request.prompt), el('span', { class: 'muted' }, ' …'));
        meta.textContent = '';
        const result = await this.app.engine.generate({ ...request, adapterId, adapterScale });
        target.replaceChildren(
          el('span', { class: 'prompt-echo' }, request.prompt),
          el('span', { class: 'continuation', 'data-testid': 'continuation' }, result.text),
        );
        target.dataset.state = 'done';
        meta.textContent = `${result.tokens} tokens, ${(result.ms / 1000).toFixed(1)} s${strength}`;
        texts.push(result.text);
      }
      const [base, adapted] = texts;
      this.app.update({ comparison: { ...request, adapterId, adapterScale, base, adapted } });
    } catch (error) {
      this.notice.show(errorMessage(error));
    } finally {
      this.busy = false;
      this.renderButton();
    }
  }
}

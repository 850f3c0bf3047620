/**
 * The chat playground's generation settings: base model or a stored adapter with the on/off
 * switch and scale that Compare has, temperature, top-p, new tokens, the documents as context
 * (how many sources), side by side (base | adapter) and a system prompt. The engine checks the
 * values (checkChatSettings) and names the field it refuses.
 */
import type { AdapterSummary, ChatTurnSettings, ModelInfo } from '../../app/api';
import type { App } from '../app';
import { el } from '../dom';

const number = (attrs: Record<string, string | number>, testId: string) => el('input', { type: 'number', ...attrs, 'data-testid': testId });

const field = (label: string, control: HTMLElement, hint?: string) =>
  el('label', { class: 'field' }, el('span', { class: 'field-label' }, label), control, hint ? el('span', { class: 'hint' }, hint) : null);

export class ChatSettingsView {
  readonly element: HTMLElement;
  private readonly adapter = el('select', { 'data-testid': 'chat-adapter', 'aria-label': 'Adapter' });
  private readonly adapterOn = el('input', { type: 'checkbox', checked: true, 'data-testid': 'chat-adapter-on' });
  private readonly scale = number({ min: 0, step: 0.1, value: 1 }, 'chat-adapter-scale');
  private readonly temperature = number({ min: 0, step: 0.1, value: 0.7 }, 'chat-temperature');
  private readonly topP = number({ min: 0.05, max: 1, step: 0.05, value: 0.9 }, 'chat-top-p');
  private readonly maxTokens = number({ min: 1, max: 2048, value: 64 }, 'chat-max-tokens');
  private readonly topK = number({ min: 1, max: 10, value: 3 }, 'chat-top-k');
  private readonly useDocuments = el('input', { type: 'checkbox', checked: true, 'data-testid': 'chat-use-documents' });
  private readonly sideBySide = el('input', { type: 'checkbox', 'data-testid': 'chat-side-by-side' });
  private readonly systemPrompt = el('textarea', { rows: 2, 'data-testid': 'chat-system-prompt', 'aria-label': 'System prompt' });
  private chosen: string | null = null;

  constructor(app: App) {
    this.adapter.addEventListener('change', () => (this.chosen = this.adapter.value || null));
    this.adapterOn.addEventListener('change', () => (this.scale.disabled = !this.adapterOn.checked));
    this.element = el(
      'details',
      { class: 'chat-settings', 'data-testid': 'chat-settings', open: true },
      el('summary', {}, 'Generation settings'),
      el(
        'div',
        { class: 'fields three' },
        field('Adapter', this.adapter),
        field('Adapter scale (1: as trained)', this.scale, 'Multiplies the LoRA scaling at generation time.'),
        field('Temperature (0: greedy)', this.temperature),
        field('Top-p', this.topP),
        field('New tokens at most', this.maxTokens),
        field('Sources per turn', this.topK, 'The best passages of your documents for each message.'),
      ),
      el(
        'div',
        { class: 'inline' },
        el('label', { class: 'check' }, this.adapterOn, 'Adapter on'),
        el('label', { class: 'check' }, this.useDocuments, 'Answer from my documents (RAG)'),
        el('label', { class: 'check' }, this.sideBySide, 'Side by side: base | adapter'),
      ),
      field('System prompt', this.systemPrompt, 'Put before the numbered sources in the system message.'),
    );
    app.watch(
      (s) => [s.adapters, s.model],
      (adapters, model) => this.renderAdapters(adapters, model),
    );
  }

  private renderAdapters(adapters: AdapterSummary[], model: ModelInfo | null): void {
    const usable = adapters.filter((a) => a.baseModel === model?.name);
    if (!usable.some((a) => a.id === this.chosen)) this.chosen = null;
    this.adapter.replaceChildren(
      el('option', { value: '' }, 'None: the base model alone'),
      ...usable.map((a) => el('option', { value: a.id }, a.name)),
    );
    this.adapter.value = this.chosen ?? '';
  }

  /** The settings as the form holds them; the engine checks them. */
  read(): ChatTurnSettings {
    const value = (input: HTMLInputElement) => (input.value.trim() === '' ? Number.NaN : Number(input.value));
    const adapterId = this.adapter.value || null;
    return {
      adapterId,
      adapterScale: adapterId && !this.adapterOn.checked ? 0 : value(this.scale),
      temperature: value(this.temperature),
      topP: value(this.topP),
      maxNewTokens: value(this.maxTokens),
      systemPrompt: this.systemPrompt.value,
      useDocuments: this.useDocuments.checked,
      topK: value(this.topK),
      sideBySide: this.sideBySide.checked,
    };
  }
}

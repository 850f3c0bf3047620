import type { AdapterSummary } from '../../app/api';
import type { App, Panel } from '../app';
import { downloadBytes, el, errorMessage, formatLoss, Notice, panelHeader } from '../dom';
import { ExportSection } from '../views/adapter-export';
import { AdapterImport } from '../views/adapter-import';

function settingsLine(a: AdapterSummary): string {
  const t = a.settings.training;
  const lora =
    `r ${a.config.r}, alpha ${a.config.alpha}${a.config.dropout ? `, dropout ${a.config.dropout}` : ''}` +
    ` on ${a.config.targets.join(', ')}`;
  if (a.imported) return lora;
  return (
    `${lora} · lr ${t.lr}, ${t.epochs} epochs, batch ${t.batchSize}${Number(t.gradAccum) > 1 ? ` × ${t.gradAccum}` : ''}` +
    `, max length ${t.maxLength}`
  );
}

const fileSafe = (name: string) => name.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'adapter';

export class AdaptersPanel implements Panel {
  readonly element: HTMLElement;
  private readonly notice = new Notice('adapters-error');
  private readonly list = el('div', { class: 'adapter-list', 'data-testid': 'adapter-list' });
  private editing: string | null = null;
  private readonly deleteButtons: HTMLButtonElement[] = [];
  private readonly importer: AdapterImport;
  private readonly exporter: ExportSection;

  constructor(private readonly app: App) {
    this.importer = new AdapterImport(app);
    this.exporter = new ExportSection(app);
    this.element = el(
      'section',
      { class: 'panel' },
      panelHeader(
        'Adapters',
        'Trained and imported adapters stay in this browser. ' +
          '"Download zip" gives the PEFT folder (adapter_config.json + adapter_model.safetensors) ' +
          'that transformers, vLLM and PEFT load; Export below also writes GGUF and merged models, with the Ollama steps.',
      ),
      this.notice.element,
      this.list,
      this.exporter.element,
      this.importer.element,
    );
    app.watch(
      (s) => [s.adapters.length],
      (n) => app.note('adapters', n ? `${n} saved` : 'None yet'),
    );
    app.watch(
      (s) => [s.adapters],
      () => this.renderList(),
    );
    app.watch(
      (s) => [s.training],
      (training) => {
        for (const button of this.deleteButtons) button.disabled = training;
      },
    );
  }

  private renderList(): void {
    const adapters = this.app.state.adapters;
    this.deleteButtons.length = 0;
    this.list.replaceChildren(...adapters.map((a) => this.card(a)));
    if (adapters.length === 0) {
      const empty = 'Adapters appear here when a run completes or is stopped, or when you import one.';
      this.list.append(el('p', { class: 'muted empty' }, empty));
    }
  }

  private card(a: AdapterSummary): HTMLElement {
    let title: HTMLElement;
    if (this.editing === a.id) {
      const input = el('input', { type: 'text', value: a.name, 'data-testid': 'adapter-name-input', 'aria-label': 'Adapter name' });
      const save = () => void this.rename(a.id, input.value);
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') save();
        if (e.key === 'Escape') this.setEditing(null);
      });
      title = el(
        'div',
        { class: 'inline' },
        input,
        el('button', { type: 'button', 'data-testid': 'adapter-rename-save', onclick: save }, 'Save'),
      );
      queueMicrotask(() => input.focus());
    } else {
      title = el('h3', { 'data-testid': 'adapter-name' }, a.name);
    }
    const remove = el(
      'button',
      {
        type: 'button',
        class: 'secondary danger',
        'data-testid': 'adapter-delete',
        disabled: this.app.state.training,
        onclick: () => void this.remove(a),
      },
      'Delete',
    );
    this.deleteButtons.push(remove);
    return el(
      'article',
      { class: 'adapter-card', 'data-testid': 'adapter-row', 'data-adapter-id': a.id },
      title,
      el(
        'dl',
        { class: 'facts compact' },
        el('dt', {}, 'Base model'),
        el('dd', {}, a.baseModel),
        ...(a.imported
          ? [
              el('dt', {}, 'Imported from'),
              el(
                'dd',
                { 'data-testid': 'adapter-imported' },
                a.imported.from + (a.imported.declaredBaseModel ? ` (trained on ${a.imported.declaredBaseModel})` : ''),
              ),
            ]
          : [el('dt', {}, 'Dataset'), el('dd', {}, a.datasetName)]),
        el('dt', {}, 'Settings'),
        el('dd', {}, settingsLine(a)),
        el('dt', {}, 'Final loss'),
        el('dd', { 'data-testid': 'adapter-losses' }, `train ${formatLoss(a.finalTrainLoss)} · eval ${formatLoss(a.finalEvalLoss)}`),
        el('dt', {}, 'Saved'),
        el('dd', {}, new Date(a.createdAt).toLocaleString()),
      ),
      el(
        'div',
        { class: 'inline' },
        el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'adapter-download', onclick: () => void this.download(a) },
          'Download zip',
        ),
        el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'adapter-rename', onclick: () => this.setEditing(a.id) },
          'Rename',
        ),
        remove,
      ),
    );
  }

  private setEditing(id: string | null): void {
    this.editing = id;
    this.renderList();
  }

  private async rename(id: string, name: string): Promise<void> {
    try {
      await this.app.engine.renameAdapter(id, name);
      this.editing = null;
      await this.app.refreshAdapters();
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private async remove(a: AdapterSummary): Promise<void> {
    if (!confirm(`Delete the adapter "${a.name}"? Download it first if you want to keep it.`)) return;
    try {
      await this.app.engine.deleteAdapter(a.id);
      await this.app.refreshAdapters();
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private async download(a: AdapterSummary): Promise<void> {
    try {
      const bytes = await this.app.engine.exportAdapterZip(a.id);
      downloadBytes(bytes as Uint8Array<ArrayBuffer>, `${fileSafe(a.name)}.zip`, 'application/zip');
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }
}

import type { DatasetAnalysis, DatasetPreview, DatasetSummary } from '../../app/api';
import type { App, Panel } from '../app';
import { clip, el, errorMessage, Notice, panelHeader, plural, rowText } from '../dom';
import { analysisView } from '../views/analysis';
import { EnhancementView } from '../views/enhance';
import { DatasetSourceField, type Role } from '../views/dataset-source';
import { ImportProgressView } from '../views/import-progress';

/** Invalid lines drawn at once; a file of garbage can have a million, and the counts say how many more. */
const SHOWN_ERRORS = 500;

export class DataPanel implements Panel {
  readonly element: HTMLElement;
  private readonly notice = new Notice('data-error');
  private readonly previewBox = el('div', { class: 'preview', 'data-testid': 'import-preview', hidden: true });
  private readonly list = el('ul', { class: 'dataset-list', 'data-testid': 'dataset-list' });
  private readonly trainSelect = el('select', { 'data-testid': 'train-dataset-select' });
  private readonly evalSelect = el('select', { 'data-testid': 'eval-dataset-select' });
  private readonly trainAnalysis = el('div', { class: 'train-analysis', 'data-testid': 'train-analysis' });
  private readonly deleteButtons: HTMLButtonElement[] = [];
  private readonly source: DatasetSourceField;
  private readonly progress = new ImportProgressView(() => void this.app.engine.cancelDatasetImport());
  private preview: { data: DatasetPreview; role: Role } | null = null;

  constructor(private readonly app: App) {
    this.source = new DatasetSourceField(app, (source, role) => void this.importSource(source, role));
    const picker = (role: Role, label: string) => {
      const input = el('input', {
        type: 'file',
        accept: '.jsonl,.json,.txt,.parquet,application/jsonl',
        class: 'visually-hidden',
        id: `dataset-${role}`,
        'data-testid': `dataset-file-${role}`,
      });
      input.addEventListener('change', () => {
        const file = input.files?.[0];
        input.value = '';
        if (file) void this.importFile(file, role);
      });
      return el('label', { class: 'button secondary', for: `dataset-${role}` }, label, input);
    };
    this.trainSelect.addEventListener('change', () => app.update({ trainDatasetId: this.trainSelect.value || null }));
    this.evalSelect.addEventListener('change', () => app.update({ evalDatasetId: this.evalSelect.value || null }));

    this.element = el(
      'section',
      { class: 'panel' },
      panelHeader(
        'Data',
        'JSONL, one example per line, a JSON list of them, or a Parquet table: {"text"}, {"prompt", "completion"}, {"messages"}, ' +
          'ShareGPT {"conversations"}, Alpaca {"instruction", "output"} or OpenAI-style chat-completion logs; ' +
          "or Open WebUI's chat export (JSON). " +
          'Files are checked line by line before anything is stored.',
      ),
      el('div', { class: 'inline' }, picker('train', 'Import training file…'), picker('eval', 'Import eval file…')),
      this.source.element,
      this.progress.element,
      this.notice.element,
      this.previewBox,
      el('h3', {}, 'Stored datasets'),
      this.list,
      el(
        'div',
        { class: 'grid-2 selects' },
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Train on'), this.trainSelect),
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Evaluate on'), this.evalSelect),
      ),
      this.trainAnalysis,
      new EnhancementView(app).element,
      el(
        'div',
        { class: 'actions' },
        el('button', { type: 'button', 'data-testid': 'to-settings', onclick: () => app.goTo('settings') }, 'Next: settings'),
      ),
    );
    app.handle('importDatasetFrom', (source, role) => this.importAndStore(source, role));
    app.watch(
      (s) => [s.datasets],
      (datasets) => this.renderList(datasets),
    );
    app.watch(
      (s) => [s.training],
      (training) => {
        for (const button of this.deleteButtons) button.disabled = training;
      },
    );
    app.watch(
      (s) => [s.datasets],
      (datasets) => fillDatasetOptions(this.trainSelect, 'Choose a dataset…', datasets, app.state.trainDatasetId),
    );
    app.watch(
      (s) => [s.datasets, Math.round(s.settings.evalFraction * 100)],
      (datasets, percent) =>
        fillDatasetOptions(this.evalSelect, `Hold out ${percent}% of the training rows`, datasets, app.state.evalDatasetId),
    );
    app.watch(
      (s) => [s.trainDatasetId],
      (id) => (this.trainSelect.value = id ?? ''),
    );
    app.watch(
      (s) => [s.evalDatasetId],
      (id) => (this.evalSelect.value = id ?? ''),
    );
    // Redrawn only when the analysis changes, so conversations the user opened stay open.
    app.watch(
      (s) => [s.trainAnalysis],
      (analysis) => this.renderAnalysis(analysis),
    );
    app.watch(
      (s) => [s.datasets, s.trainDatasetId, s.evalDatasetId],
      (datasets, trainId, evalId) => {
        const train = datasets.find((d) => d.id === trainId);
        const evalSet = datasets.find((d) => d.id === evalId);
        app.note(
          'data',
          train
            ? `${train.rowCount}${evalSet ? ` + ${evalSet.rowCount}` : ''} rows`
            : datasets.length
              ? `${plural(datasets.length, 'dataset')} stored`
              : 'No data yet',
        );
      },
    );
  }

  private renderList(datasets: DatasetSummary[]): void {
    this.deleteButtons.length = 0;
    this.list.replaceChildren(
      ...datasets.map((d) => {
        const remove = el(
          'button',
          { type: 'button', class: 'link danger', disabled: this.app.state.training, onclick: () => void this.remove(d.id, d.name) },
          'Delete',
        );
        this.deleteButtons.push(remove);
        return el(
          'li',
          { class: 'dataset-item', 'data-testid': 'dataset-item', 'data-name': d.name },
          el(
            'div',
            {},
            el('strong', {}, d.name),
            el('span', { class: 'muted' }, ` · ${plural(d.rowCount, 'row')} · ${d.format} · from ${d.sourceFileName}`),
          ),
          d.invalidLineCount ? el('span', { class: 'tag warn' }, `${plural(d.invalidLineCount, 'invalid line')} skipped`) : null,
          remove,
        );
      }),
    );
    if (datasets.length === 0) this.list.append(el('li', { class: 'muted empty' }, 'Nothing imported yet.'));
  }

  private renderAnalysis(analysis: DatasetAnalysis | null): void {
    const { datasets, trainDatasetId } = this.app.state;
    const name = datasets.find((d) => d.id === trainDatasetId)?.name ?? '';
    this.trainAnalysis.replaceChildren(analysis ? analysisView(analysis, `Task analysis of the training data "${name}"`) : '');
  }

  private async importFile(file: File, role: Role): Promise<void> {
    this.notice.clear();
    if (this.preview) await this.app.engine.discardDataset(this.preview.data.previewId);
    this.preview = null;
    this.previewBox.hidden = true;
    this.progress.start(file.name, file.size);
    try {
      const name = file.name.replace(/\.(jsonl|json|txt)$/i, '').replace(/[_-]+/g, ' ');
      const data = await this.app.engine.importDataset(name, file, file.name, (p) => this.progress.show(file.name, p));
      this.preview = { data, role };
      this.showPreview();
    } catch (error) {
      this.notice.show(
        (error as Error)?.name === 'ImportCancelledError' ? errorMessage(error) : `Could not read ${file.name}: ${errorMessage(error)}`,
      );
    } finally {
      this.progress.hide();
    }
  }

  /** A URL or Hub dataset through the same preview as a file. */
  private async importSource(source: string, role: Role): Promise<void> {
    this.notice.clear();
    if (this.preview) await this.app.engine.discardDataset(this.preview.data.previewId);
    this.preview = null;
    this.previewBox.hidden = true;
    try {
      this.preview = { data: await this.source.fetch(source), role };
      this.showPreview();
    } catch (error) {
      this.notice.show(`Could not read ${source}: ${errorMessage(error)}`);
    }
  }

  /** A dataset a setup names (share link, demo): downloaded, its valid rows stored and chosen, without the preview. */
  private async importAndStore(source: string, role: Role): Promise<DatasetSummary | null> {
    this.notice.clear();
    try {
      const data = await this.source.fetch(source);
      const summary = await this.app.engine.commitDataset(data.previewId);
      await this.app.refreshDatasets();
      this.app.update(role === 'train' ? { trainDatasetId: summary.id } : { evalDatasetId: summary.id });
      const skipped = data.errorCount ? `, ${plural(data.errorCount, 'invalid row')} skipped` : '';
      this.notice.show(`Imported ${plural(summary.rowCount, 'row')} of ${data.fileName} as "${summary.name}"${skipped}.`, 'ok');
      return summary;
    } catch (error) {
      this.notice.show(`Could not read ${source}: ${errorMessage(error)}`);
      return null;
    }
  }

  private showPreview(): void {
    if (!this.preview) return;
    const { data, role } = this.preview;
    const nameInput = el('input', { type: 'text', value: data.name, 'data-testid': 'preview-name', 'aria-label': 'Dataset name' });
    const formats = Object.entries(data.formats)
      .filter(([, n]) => n > 0)
      .map(([f, n]) => `${f} (${n})`)
      .join(', ');
    const stats = el(
      'ul',
      { class: 'stats' },
      el(
        'li',
        { 'data-testid': 'preview-valid', 'data-count': data.validRows },
        el('strong', {}, data.validRows.toLocaleString('en-US')),
        ' valid rows',
      ),
      el(
        'li',
        { 'data-testid': 'preview-invalid', 'data-count': data.errorCount, class: data.errorCount ? 'bad' : '' },
        el('strong', {}, data.errorCount.toLocaleString('en-US')),
        data.container === 'jsonl' ? ' invalid lines' : ' invalid rows',
      ),
      data.container === 'parquet'
        ? el('li', {}, el('strong', {}, String(data.totalLines)), ' rows in the table')
        : el('li', {}, el('strong', {}, String(data.totalLines)), ' lines in the file'),
      data.skippedBlank ? el('li', {}, plural(data.skippedBlank, 'blank line'), ' skipped') : null,
      el('li', {}, 'Format: ', el('strong', {}, formats || 'none recognised')),
    );
    const sample = data.sample.length
      ? el('ol', { class: 'sample' }, ...data.sample.map((row) => el('li', {}, clip(rowText(row), 240))))
      : null;

    let errors: HTMLElement | null = null;
    if (data.errors.length) {
      const body = el('tbody');
      // JSONL errors are lines, a JSON list's entries (with the line they start on), a Parquet table's rows.
      const where = { jsonl: ['Line'], json: ['Entry', 'Line'], parquet: ['Row'] }[data.container];
      for (const error of data.errors.slice(0, SHOWN_ERRORS)) {
        const place =
          data.container === 'jsonl' ? [error.line] : data.container === 'json' ? [error.entry ?? '—', error.line] : [error.entry];
        body.append(
          el(
            'tr',
            { 'data-testid': 'import-error', 'data-line': error.line, 'data-entry': error.entry },
            ...place.map((n) => el('td', { class: 'num' }, String(n))),
            el('td', {}, error.reason),
            el('td', { class: 'excerpt' }, el('code', {}, error.excerpt)),
          ),
        );
      }
      errors = el(
        'div',
        { class: 'errors', 'data-testid': 'import-errors' },
        el(
          'table',
          {},
          el('thead', {}, el('tr', {}, ...where.map((w) => el('th', {}, w)), el('th', {}, 'Problem'), el('th', {}, 'Starts with'))),
          body,
        ),
        data.errorCount > SHOWN_ERRORS
          ? el('p', { class: 'muted' }, `${(data.errorCount - SHOWN_ERRORS).toLocaleString('en-US')} more invalid lines are not listed.`)
          : null,
      );
    }

    const confirm = el(
      'button',
      { type: 'button', 'data-testid': 'import-confirm', disabled: data.validRows === 0, onclick: () => void this.commit(nameInput.value) },
      data.errorCount && data.validRows
        ? `Import ${plural(data.validRows, 'valid row')}, skip ${data.errorCount} invalid`
        : `Import ${plural(data.validRows, 'row')}`,
    );
    const cancel = el(
      'button',
      { type: 'button', class: 'secondary', 'data-testid': 'import-cancel', onclick: () => void this.cancel() },
      'Cancel',
    );
    const parts = [
      el(
        'div',
        { class: 'preview-head' },
        el('strong', {}, data.fileName),
        el('span', { class: 'tag' }, role === 'train' ? 'training data' : 'eval data'),
      ),
      el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Name'), nameInput),
      stats,
      data.validRows > 0 ? analysisView(data.analysis) : null,
      data.validRows === 0
        ? el(
            'p',
            { class: 'notice', 'data-kind': 'error' },
            'No line of this file is a usable example, so there is nothing to import. Fix the lines below and choose the file again.',
          )
        : null,
      sample ? el('details', { open: true }, el('summary', {}, 'First rows'), sample) : null,
      errors,
      el('div', { class: 'actions' }, cancel, confirm),
    ];
    this.previewBox.replaceChildren(...parts.filter((part) => part !== null));
    this.previewBox.hidden = false;
  }

  private async commit(name: string): Promise<void> {
    if (!this.preview) return;
    const { data, role } = this.preview;
    try {
      const summary = await this.app.engine.commitDataset(data.previewId, name);
      this.preview = null;
      this.previewBox.hidden = true;
      await this.app.refreshDatasets();
      this.app.update(role === 'train' ? { trainDatasetId: summary.id } : { evalDatasetId: summary.id });
      this.notice.show(`Imported ${plural(summary.rowCount, 'row')} as "${summary.name}".`, 'ok');
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private async cancel(): Promise<void> {
    if (this.preview) await this.app.engine.discardDataset(this.preview.data.previewId);
    this.preview = null;
    this.previewBox.hidden = true;
    this.notice.clear();
  }

  private async remove(id: string, name: string): Promise<void> {
    if (!confirm(`Delete the dataset "${name}"? Runs trained on it can no longer be resumed.`)) return;
    try {
      await this.app.engine.deleteDataset(id);
      await this.app.refreshDatasets();
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }
}

/** A select's dataset options after a first, empty one; `value` stays chosen. */
function fillDatasetOptions(select: HTMLSelectElement, first: string, datasets: DatasetSummary[], value: string | null): void {
  select.replaceChildren(
    el('option', { value: '' }, first),
    ...datasets.map((d) => el('option', { value: d.id }, `${d.name} (${d.rowCount} rows)`)),
  );
  select.value = value ?? '';
}

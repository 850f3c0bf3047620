/**
 * The RAG answer enhancement of the chosen training data, optional and previewed: per changed row,
 * each assistant sentence that draws on a numbered source without citing it, with the `[n]` it
 * would gain and the overlap that chose it; nothing changes until the user applies it, which stores
 * the enhanced rows as a new dataset and leaves the original as it is.
 */
import type { EnhancementReport } from '../../app/api';
import type { App } from '../app';
import { el, errorMessage, Notice, plural } from '../dom';

/** Changed rows drawn at once; the counts cover all of them. */
const SHOWN_ROWS = 200;

export class EnhancementView {
  readonly element: HTMLElement;
  private readonly notice = new Notice('enhance-notice');
  private readonly body = el('div', { 'data-testid': 'enhance-report' });
  private readonly previewButton = el('button', { type: 'button', class: 'secondary', 'data-testid': 'enhance-preview' }, 'Preview');
  private report: EnhancementReport | null = null;

  constructor(private readonly app: App) {
    this.previewButton.addEventListener('click', () => void this.preview());
    this.element = el(
      'details',
      { class: 'enhance', 'data-testid': 'enhance' },
      el('summary', {}, 'Optional: add missing source citations to RAG answers'),
      el(
        'p',
        { class: 'muted small' },
        'In rows with a Context: block, an assistant sentence that cites nothing gains [n] for the numbered source holding at least ' +
          'half of its content words. Preview first; applying stores the result as a new dataset and keeps the original.',
      ),
      el('div', { class: 'actions' }, this.previewButton),
      this.body,
      this.notice.element,
    );
    app.watch(
      (s) => [s.trainDatasetId],
      (id) => {
        this.report = null;
        this.body.replaceChildren();
        this.notice.clear();
        this.previewButton.disabled = id === null;
      },
    );
  }

  private async preview(): Promise<void> {
    const id = this.app.state.trainDatasetId;
    if (!id) return;
    this.notice.clear();
    try {
      this.report = await this.app.engine.previewEnhancement(id);
      if (this.app.state.trainDatasetId === id) this.render(this.report);
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private render(report: EnhancementReport): void {
    const rows = report.rows
      .slice(0, SHOWN_ROWS)
      .map((row) =>
        el(
          'li',
          { 'data-testid': 'enhance-row', 'data-row': row.row },
          el('strong', {}, `row ${row.row + 1}`),
          el(
            'ul',
            {},
            ...row.changes.map((c) =>
              el(
                'li',
                { 'data-testid': 'enhance-change', 'data-source': c.source, 'data-overlap': c.overlap },
                el('span', {}, c.sentence),
                el('strong', {}, ` + [${c.source}]`),
                el('span', { class: 'muted small' }, ` · overlap ${c.overlap.toFixed(2)} with source ${c.source}`),
              ),
            ),
          ),
        ),
      );
    const apply = el(
      'button',
      { type: 'button', 'data-testid': 'enhance-apply', disabled: report.rowsChanged === 0, onclick: () => void this.apply(report) },
      `Apply: store as a new dataset`,
    );
    const parts = [
      el(
        'p',
        { 'data-testid': 'enhance-summary', 'data-rows-changed': report.rowsChanged, 'data-citations-added': report.citationsAdded },
        el('strong', {}, `${plural(report.rowsChanged, 'row')} of ${report.totalRows} would change`),
        ` (${plural(report.citationsAdded, 'citation')} added; ${report.ragRows} rows have numbered sources; ` +
          `threshold ${report.threshold}).`,
      ),
      rows.length ? el('ol', { class: 'removed-rows' }, ...rows) : el('p', { class: 'muted' }, 'Nothing to add.'),
      report.rows.length > SHOWN_ROWS
        ? el('p', { class: 'muted small' }, `${report.rows.length - SHOWN_ROWS} more rows are not listed.`)
        : null,
      el('div', { class: 'actions' }, apply),
    ];
    this.body.replaceChildren(...parts.filter((part) => part !== null));
  }

  private async apply(report: EnhancementReport): Promise<void> {
    try {
      const dataset = await this.app.engine.applyEnhancement(report.datasetId);
      await this.app.refreshDatasets();
      this.app.update({ trainDatasetId: dataset.id });
      this.notice.show(`Stored "${dataset.name}" and chose it as training data; "${report.datasetName}" is unchanged.`, 'ok');
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }
}

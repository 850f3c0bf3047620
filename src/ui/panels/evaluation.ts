/**
 * Evaluation step: a stored dataset through the base model and through base + adapter, side by
 * side: loss and perplexity, RAG metrics of generated answers, every row, and the report as JSON
 * and CSV downloads (the same serialisations the engine's library writes).
 */
import type { EvaluationReport, ExampleEvaluation } from '../../eval/evaluate';
import { toCsv, toJson } from '../../eval/report-files';
import type { RagAggregate } from '../../eval/rag-metrics';
import type { AdapterSummary, DatasetSummary, EvaluationProgress, ModelInfo } from '../../app/api';
import type { App, Panel } from '../app';
import { clip, downloadBytes, el, errorMessage, Notice, panelHeader } from '../dom';

interface Metric {
  id: string;
  label: string;
  value: (side: EvaluationReport['before']) => number | null | undefined;
  format: (value: number) => string;
  /** Whether a lower figure is the better one, to mark the change. */
  lowerIsBetter: boolean;
}

const share = (x: number) => `${(100 * x).toFixed(1)}%`;
const rag = (pick: (r: RagAggregate) => number | null) => (side: EvaluationReport['before']) => (side.rag ? pick(side.rag) : null);

const METRICS: Metric[] = [
  { id: 'loss', label: 'Loss (mean token cross-entropy)', value: (s) => s.loss, format: (x) => x.toFixed(4), lowerIsBetter: true },
  { id: 'perplexity', label: 'Perplexity', value: (s) => s.perplexity, format: (x) => x.toFixed(3), lowerIsBetter: true },
  {
    id: 'context-usage',
    label: 'RAG: answers that use their context',
    value: rag((r) => r.contextUsage),
    format: share,
    lowerIsBetter: false,
  },
  {
    id: 'source-attribution',
    label: 'RAG: answers citing a source of their context',
    value: rag((r) => r.sourceAttribution),
    format: share,
    lowerIsBetter: false,
  },
  {
    id: 'missing-source-rate',
    label: 'RAG: answers citing a source the context lacks',
    value: rag((r) => r.missingSourceRate),
    format: share,
    lowerIsBetter: true,
  },
  {
    id: 'missing-citations',
    label: 'RAG: citations of missing sources',
    value: rag((r) => r.missingCitations),
    format: String,
    lowerIsBetter: true,
  },
  {
    id: 'token-f1',
    label: 'RAG: token F1 against the reference answer',
    value: rag((r) => r.meanF1),
    format: (x) => x.toFixed(3),
    lowerIsBetter: false,
  },
  { id: 'exact-match', label: 'RAG: exact match', value: rag((r) => r.exactMatchRate), format: share, lowerIsBetter: false },
];

const STAGE_LABELS: Record<EvaluationProgress['stage'], string> = { loss: 'loss, batch', generation: 'RAG answer' };

function figure(value: number | null | undefined, format: (x: number) => string, testId: string): HTMLElement {
  const known = value !== null && value !== undefined && Number.isFinite(value);
  return el('td', { class: 'num', 'data-testid': testId, ...(known ? { 'data-value': value } : {}) }, known ? format(value) : '—');
}

function summaryTable(report: EvaluationReport): HTMLElement {
  const after = report.after;
  const rows = METRICS.map((m) => {
    const before = m.value(report.before);
    const later = after ? m.value(after) : null;
    const change = before != null && later != null ? later - before : null;
    const better = change === null || change === 0 ? '' : change < 0 === m.lowerIsBetter ? 'better' : 'worse';
    return el(
      'tr',
      { 'data-testid': 'eval-metric', 'data-metric': m.id },
      el('th', { scope: 'row' }, m.label),
      figure(before, m.format, 'before'),
      figure(later, m.format, 'after'),
      el(
        'td',
        { class: `num change ${better}`, 'data-testid': 'change' },
        change === null ? '—' : `${change > 0 ? '+' : ''}${m.format(change)}`,
      ),
    );
  });
  return el(
    'table',
    { class: 'table eval-summary', 'data-testid': 'eval-summary' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', {}, ''),
        el('th', { class: 'num' }, `Before: ${report.before.label}`),
        el('th', { class: 'num' }, `After: ${after?.label ?? '—'}`),
        el('th', { class: 'num' }, 'Change'),
      ),
    ),
    el('tbody', {}, ...rows),
  );
}

function examplesTable(report: EvaluationReport): HTMLElement {
  const after = new Map(report.examples.filter((e) => e.model === 'after').map((e) => [e.index, e]));
  const answer = (e: ExampleEvaluation | undefined) =>
    e?.rag
      ? el(
          'div',
          { class: 'answer' },
          clip(e.rag.response, 400),
          el('div', { class: 'muted small' }, `cites ${e.rag.citations.join(', ') || 'nothing'} · F1 ${e.rag.f1?.toFixed(2) ?? '—'}`),
        )
      : '';
  const rows = report.examples
    .filter((e) => e.model === 'before')
    .map((before) => {
      const later = after.get(before.index);
      return el(
        'tr',
        { 'data-testid': 'eval-example', 'data-index': before.index },
        el('td', { class: 'num' }, String(before.index + 1)),
        el('td', {}, before.kind, before.rag ? el('span', { class: 'tag' }, 'RAG') : ''),
        el('td', { class: 'num' }, String(before.targets)),
        figure(before.loss, (x) => x.toFixed(4), 'loss-before'),
        figure(later?.loss, (x) => x.toFixed(4), 'loss-after'),
        figure(before.perplexity, (x) => x.toFixed(2), 'perplexity-before'),
        figure(later?.perplexity, (x) => x.toFixed(2), 'perplexity-after'),
        el('td', {}, answer(before)),
        el('td', {}, answer(later)),
      );
    });
  return el(
    'div',
    { class: 'table-scroll' },
    el(
      'table',
      { class: 'table', 'data-testid': 'eval-examples' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ...[
            'Row',
            'Kind',
            'Targets',
            'Loss before',
            'Loss after',
            'Perplexity before',
            'Perplexity after',
            'Answer before',
            'Answer after',
          ].map((h) => el('th', {}, h)),
        ),
      ),
      el('tbody', {}, ...rows),
    ),
  );
}

export class EvaluationPanel implements Panel {
  readonly element: HTMLElement;
  private readonly notice = new Notice('eval-error');
  private readonly datasetSelect = el('select', { 'data-testid': 'eval-dataset' });
  private readonly adapterSelect = el('select', { 'data-testid': 'eval-adapter' });
  private readonly maxTokens = el('input', { type: 'number', min: 1, max: 512, value: 32, 'data-testid': 'eval-max-tokens' });
  private readonly temperature = el('input', { type: 'number', min: 0, step: 0.1, value: 0, 'data-testid': 'eval-temperature' });
  private readonly button = el('button', { type: 'button', class: 'primary', 'data-testid': 'eval-run' }, 'Evaluate');
  private readonly status = el('p', { class: 'status-line', role: 'status', 'data-testid': 'eval-status' });
  private readonly result = el('div', { 'data-testid': 'eval-report', hidden: true });
  private busy = false;
  private datasetId: string | null = null;
  private adapterId: string | null = null;

  constructor(private readonly app: App) {
    this.datasetSelect.addEventListener('change', () => (this.datasetId = this.datasetSelect.value || null));
    this.adapterSelect.addEventListener('change', () => (this.adapterId = this.adapterSelect.value || null));
    this.button.addEventListener('click', () => void this.run());
    this.element = el(
      'section',
      { class: 'panel' },
      panelHeader(
        'Evaluate',
        'A held-out dataset through the base model and through the base model with an adapter. ' +
          'Rows with a Context: block also get a generated answer, scored for grounding and citations.',
      ),
      el(
        'div',
        { class: 'fields' },
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Dataset'), this.datasetSelect),
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Adapter'), this.adapterSelect),
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'New tokens per RAG answer'), this.maxTokens),
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Temperature (0: greedy)'), this.temperature),
      ),
      el('div', { class: 'actions' }, this.button),
      this.status,
      this.notice.element,
      this.result,
    );
    app.note('evaluate', 'After training');
    app.watch(
      (s) => [s.datasets],
      (datasets) => this.renderDatasets(datasets),
    );
    // Until a dataset is picked here, the one chosen for evaluation in step 2 is the default.
    app.watch(
      (s) => [s.evalDatasetId, s.trainDatasetId],
      () => this.pickDataset(),
    );
    app.watch(
      (s) => [s.adapters, s.model],
      (adapters, model) => this.renderAdapters(adapters, model),
    );
    app.watch(
      (s) => [s.model, s.training],
      () => this.renderButton(),
    );
  }

  private renderDatasets(datasets: DatasetSummary[]): void {
    this.datasetSelect.replaceChildren(...datasets.map((d) => el('option', { value: d.id }, `${d.name} (${d.rowCount} rows)`)));
    if (datasets.length === 0) this.datasetSelect.append(el('option', { value: '' }, 'Import a dataset in step 2 first'));
    this.pickDataset();
  }

  private pickDataset(): void {
    const { datasets, evalDatasetId, trainDatasetId } = this.app.state;
    if (!this.datasetId || !datasets.some((d) => d.id === this.datasetId)) {
      this.datasetId = evalDatasetId ?? trainDatasetId ?? datasets[0]?.id ?? null;
    }
    this.datasetSelect.value = this.datasetId ?? '';
    this.renderButton();
  }

  private renderAdapters(adapters: AdapterSummary[], model: ModelInfo | null): void {
    const usable = adapters.filter((a) => a.baseModel === model?.name);
    if (this.adapterId && !usable.some((a) => a.id === this.adapterId)) this.adapterId = null;
    this.adapterId ??= usable[0]?.id ?? null;
    this.adapterSelect.replaceChildren(
      ...usable.map((a) => el('option', { value: a.id }, `${a.name} (eval ${a.finalEvalLoss?.toFixed(3) ?? '—'})`)),
      el('option', { value: '' }, 'None: the base model alone'),
    );
    this.adapterSelect.value = this.adapterId ?? '';
  }

  private renderButton(): void {
    const { model, training } = this.app.state;
    const blocker = !model
      ? 'Load a model first (step 1).'
      : !this.datasetId
        ? 'Import a dataset first (step 2).'
        : training
          ? 'The GPU is busy training; wait for the run to finish.'
          : null;
    this.button.disabled = this.busy || blocker !== null;
    this.button.title = blocker ?? '';
  }

  private async run(): Promise<void> {
    const maxNewTokens = Number(this.maxTokens.value);
    const temperature = Number(this.temperature.value);
    if (!this.datasetId) return;
    this.busy = true;
    this.notice.clear();
    this.element.dataset.state = 'running';
    this.status.textContent = 'Starting…';
    this.renderButton();
    try {
      const request = { datasetId: this.datasetId, adapterId: this.adapterId, maxNewTokens, temperature };
      const report = await this.app.engine.evaluate(request, (p) => {
        const side = p.model === 'before' ? 'Base model' : 'With the adapter';
        this.status.textContent = `${side}: ${STAGE_LABELS[p.stage]} ${p.done} of ${p.total}`;
      });
      this.show(report);
      this.app.update({ evaluation: { report, adapterId: this.adapterId, datasetId: this.datasetId } });
      const after = report.after?.perplexity;
      this.app.note('evaluate', `perplexity ${report.before.perplexity?.toFixed(2) ?? '—'} → ${after?.toFixed(2) ?? '—'}`);
      this.status.textContent = `Evaluated ${report.settings.rows} rows (${report.settings.ragRows} with a Context: block).`;
      this.element.dataset.state = 'done';
    } catch (error) {
      this.status.textContent = '';
      this.notice.show(errorMessage(error));
      this.element.dataset.state = 'failed';
    } finally {
      this.busy = false;
      this.renderButton();
    }
  }

  private show(report: EvaluationReport): void {
    const dataset = this.app.state.datasets.find((d) => d.id === this.datasetId)?.name ?? 'dataset';
    const base = `evaluation-${dataset.replace(/[^\w-]+/g, '_')}`;
    const download = (kind: 'json' | 'csv') => {
      const text = kind === 'json' ? toJson(report, 2) : toCsv(report);
      downloadBytes(new TextEncoder().encode(text), `${base}.${kind}`, kind === 'json' ? 'application/json' : 'text/csv');
    };
    this.result.replaceChildren(
      summaryTable(report),
      report.settings.ragRows === 0
        ? el('p', { class: 'muted small' }, 'No row of this dataset has a Context: block, so there are no RAG figures.')
        : '',
      el(
        'div',
        { class: 'inline' },
        el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'eval-download-json', onclick: () => download('json') },
          'Download JSON',
        ),
        el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'eval-download-csv', onclick: () => download('csv') },
          'Download CSV',
        ),
      ),
      el('h3', {}, 'Per row'),
      examplesTable(report),
    );
    this.result.hidden = false;
  }
}

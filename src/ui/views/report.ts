/**
 * "Download report" and "Download chart (PNG)" for the newest finished run: the report is one
 * self-contained HTML file (src/site/report-html.ts) with the model, data, settings, loss chart and
 * figures, and, when they were made in this session for that run's adapter, the before/after
 * evaluation and the base vs adapter comparison.
 */
import type { RunRecord } from '../../app/api';
import { type ReportData, reportHtml } from '../../site/report-html';
import type { App, AppState } from '../app';
import { downloadBytes, el, errorMessage, Notice } from '../dom';
import { lossChartPng } from './loss-chart';

const CHART = { log: false, smoothing: 0 };

/** The newest run that trained an adapter (completed or stopped). */
function reportedRun(state: AppState): RunRecord | null {
  return state.runs.find((r) => r.status === 'completed' || r.status === 'stopped') ?? null;
}

const fileStem = (name: string) => `webtune-${name.replace(/[^\w-]+/g, '_').slice(0, 60) || 'run'}`;

export class ReportButtons {
  readonly element: HTMLElement;
  private readonly notice = new Notice('report-error');
  private readonly reportButton = el('button', { type: 'button', class: 'secondary', 'data-testid': 'download-report' }, 'Download report');
  private readonly pngButton = el(
    'button',
    { type: 'button', class: 'secondary', 'data-testid': 'download-chart' },
    'Download loss chart (PNG)',
  );

  constructor(private readonly app: App) {
    this.reportButton.addEventListener('click', () => void this.download('html'));
    this.pngButton.addEventListener('click', () => void this.download('png'));
    this.element = el(
      'div',
      { class: 'report-buttons' },
      el('div', { class: 'inline' }, this.reportButton, this.pngButton),
      this.notice.element,
    );
    app.watch(
      (s) => [reportedRun(s)],
      (run) => {
        this.reportButton.disabled = run === null;
        this.pngButton.disabled = run === null;
        this.reportButton.title = run ? `The report of "${run.name}"` : 'Finish a training run first.';
      },
    );
  }

  private async download(kind: 'html' | 'png'): Promise<void> {
    const state = this.app.state;
    const run = reportedRun(state);
    if (!run) return;
    this.notice.clear();
    try {
      const chartPng = await lossChartPng(run.history, run.totalSteps, CHART, `${run.name}: loss per optimizer step`);
      if (kind === 'png') {
        const bytes = Uint8Array.from(atob(chartPng.slice(chartPng.indexOf(',') + 1)), (c) => c.charCodeAt(0));
        downloadBytes(bytes, `${fileStem(run.name)}-loss.png`, 'image/png');
        return;
      }
      const html = reportHtml(this.data(state, run, chartPng));
      downloadBytes(new TextEncoder().encode(html), `${fileStem(run.name)}-report.html`, 'text/html');
    } catch (error) {
      this.notice.show(`The ${kind === 'png' ? 'chart' : 'report'} could not be written: ${errorMessage(error)}`);
    }
  }

  private data(state: AppState, run: RunRecord, chartPng: string): ReportData {
    const adapter = state.adapters.find((a) => a.runId === run.id);
    const datasetInfo = (id: string | null) => {
      const d = state.datasets.find((x) => x.id === id);
      return d ? { name: d.name, rows: d.rowCount, from: d.source?.replace(/^(url|hub):/, '') ?? `the file ${d.sourceFileName}` } : null;
    };
    const model = state.model?.name === run.model.id ? state.model : null;
    const modelSource =
      run.model.source === 'hub'
        ? `the Hugging Face Hub (${run.model.id})`
        : model?.url
          ? model.url
          : run.model.source === 'url'
            ? 'a URL'
            : 'a local folder';
    const evaluation = state.evaluation && adapter && state.evaluation.adapterId === adapter.id ? state.evaluation.report : null;
    const comparison = state.comparison && adapter && state.comparison.adapterId === adapter.id ? state.comparison : null;
    const last = run.history.filter((p) => p.loss !== undefined).at(-1)?.loss ?? null;
    const evals = run.history.filter((p) => p.evalLoss !== undefined);
    return {
      generatedAt: new Date(),
      run,
      finalTrainLoss: adapter?.finalTrainLoss ?? last,
      finalEvalLoss: adapter?.finalEvalLoss ?? evals.at(-1)?.evalLoss ?? null,
      history: run.history,
      modelSource,
      train: datasetInfo(run.datasetId) ?? { name: 'a deleted dataset', rows: 0, from: 'unknown' },
      evalData: datasetInfo(run.evalDatasetId),
      presetId: state.preset?.id ?? null,
      chartPng,
      evaluation,
      comparison,
    };
  }
}

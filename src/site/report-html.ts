/**
 * The shareable result of a run: one HTML file with everything inlined (styles, the loss chart as
 * a PNG data: URL, the numbers), so it opens offline anywhere. A Content-Security-Policy of
 * `default-src 'none'` forbids every request and every script, and all user content (names, file
 * names, prompts, generated text) goes through `escapeHtml`: the file shows data, it never runs it.
 */
import type { EvaluationReport } from '../eval/evaluate';
import type { HistoryPoint, RunRecord } from '../storage/db';

export interface ReportData {
  generatedAt: Date;
  run: Pick<RunRecord, 'name' | 'status' | 'step' | 'totalSteps' | 'createdAt' | 'model' | 'settings' | 'filter'>;
  /** The finished run's figures; null where not measured. */
  finalTrainLoss: number | null;
  finalEvalLoss: number | null;
  history: HistoryPoint[];
  /** Where the model came from: a Hub id or URL, or "local folder". */
  modelSource: string;
  train: { name: string; rows: number; from: string };
  evalData: { name: string; rows: number; from: string } | null;
  presetId: string | null;
  /** `data:image/png;base64,…` of the loss chart. */
  chartPng: string;
  evaluation: EvaluationReport | null;
  comparison: { prompt: string; base: string; adapted: string; maxNewTokens: number; temperature: number; adapterScale: number } | null;
}

const PNG_DATA_URL = /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const num = (x: number | null | undefined, digits = 4) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits));

/** A table; without `head`, the first column names each row. */
function table(head: string[] | null, rows: (string | number)[][], testId: string): string {
  const cell = (v: string | number, tag: 'td' | 'th') => `<${tag}>${escapeHtml(String(v))}</${tag}>`;
  const thead = head ? `<thead><tr>${head.map((h) => cell(h, 'th')).join('')}</tr></thead>` : '';
  const body = rows.map((r) => `<tr>${r.map((v) => cell(v, 'td')).join('')}</tr>`).join('');
  return `<table data-testid="${testId}">${thead}<tbody>${body}</tbody></table>`;
}

function evaluationSection(report: EvaluationReport): string {
  const metrics: [string, (s: EvaluationReport['before']) => number | null | undefined, number][] = [
    ['Loss', (s) => s.loss, 4],
    ['Perplexity', (s) => s.perplexity, 3],
    ['RAG: answers that use their context', (s) => s.rag?.contextUsage, 3],
    ['RAG: answers citing a source', (s) => s.rag?.sourceAttribution, 3],
    ['RAG: token F1', (s) => s.rag?.meanF1, 3],
  ];
  const rows = metrics
    .filter(([, pick]) => pick(report.before) !== null && pick(report.before) !== undefined)
    .map(([label, pick, digits]) => {
      const before = pick(report.before) ?? null;
      const after = report.after ? (pick(report.after) ?? null) : null;
      const delta = before !== null && after !== null ? after - before : null;
      return [label, num(before, digits), num(after, digits), delta === null ? '—' : `${delta > 0 ? '+' : ''}${delta.toFixed(digits)}`];
    });
  return (
    `<h2>Evaluation before and after</h2>` +
    `<p>${escapeHtml(`${report.settings.rows} held-out rows; after: ${report.settings.adapter ?? 'no adapter'}.`)}</p>` +
    table(['Metric', 'Base model', 'With the adapter', 'Change'], rows, 'report-evaluation')
  );
}

export function reportHtml(data: ReportData): string {
  if (!PNG_DATA_URL.test(data.chartPng)) throw new Error('The loss chart is not a PNG image; the report was not written.');
  const { run } = data;
  const lora = run.settings.lora;
  const settings: (string | number)[][] = [
    ['LoRA', `r ${lora.r}, alpha ${lora.alpha}, dropout ${lora.dropout}${lora.useRslora ? ', rsLoRA' : ''}`],
    ['Adapted projections', lora.targets.join(', ')],
    ...Object.entries(run.settings.training).map(([k, v]) => [k, String(v)]),
  ];
  if (data.presetId) settings.unshift(['Preset', data.presetId]);
  if (run.filter) settings.push(['Quality filter', `${run.filter.minResponseChars}–${run.filter.maxResponseChars} response characters`]);
  const evalBefore = data.history.find((p) => p.step === 0 && p.evalLoss !== undefined)?.evalLoss ?? null;
  const figures: (string | number)[][] = [
    ['Steps', `${run.step} of ${run.totalSteps} (${run.status})`],
    ['Eval loss before training', num(evalBefore)],
    ['Eval loss after training', num(data.finalEvalLoss)],
    ['Last train loss', num(data.finalTrainLoss)],
  ];
  const points = data.history.map((p) => [p.step, num(p.loss), num(p.evalLoss)]);
  const c = data.comparison;
  const sample = (title: string, testId: string, text: string) =>
    `<div><h3>${title}</h3><p data-testid="${testId}">${escapeHtml(c!.prompt)}<b>${escapeHtml(text)}</b></p></div>`;
  const comparison = c
    ? `<h2>Base model vs adapter</h2>` +
      `<p>${escapeHtml(`${c.maxNewTokens} new tokens, temperature ${c.temperature}, adapter scale ${c.adapterScale}`)}:</p>` +
      `<div class="pair">${sample('Base model', 'report-base', c.base)}${sample('With the adapter', 'report-adapted', c.adapted)}</div>`
    : '<p class="muted">No comparison was generated in this session (step 6).</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`webtune report: ${run.name}`)}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#1c1d26}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left}
th{background:#f3f4f8}img{max-width:100%;border:1px solid #ddd;border-radius:8px}.muted{color:#666}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}.pair p{background:#f6f7fb;padding:10px;border-radius:8px}
blockquote{margin:0;padding:6px 12px;border-left:3px solid #5b5bd6}details{margin:12px 0}
</style></head><body>
<h1 data-testid="report-title">${escapeHtml(run.name)}</h1>
<p class="muted">${escapeHtml(`LoRA fine-tuning with webtune, in the browser. Report written ${data.generatedAt.toISOString()}.`)}</p>
<h2>Model and data</h2>
${table(
  null,
  [
    ['Model', `${run.model.id} (${run.model.architecture}, ${run.model.parameterCount.toLocaleString('en-US')} parameters)`],
    ['Model from', data.modelSource],
    ['Training data', `${data.train.name}: ${data.train.rows} rows, from ${data.train.from}`],
    [
      'Eval data',
      data.evalData ? `${data.evalData.name}: ${data.evalData.rows} rows, from ${data.evalData.from}` : 'held out from the training data',
    ],
  ],
  'report-data',
)}
<h2>Settings</h2>
${table(['Setting', 'Value'], settings, 'report-settings')}
<h2>Loss</h2>
<img data-testid="report-chart" alt="Train and eval loss per optimizer step" src="${data.chartPng}">
${table(null, figures, 'report-figures')}
<details><summary>Every point of the chart</summary>${table(['Step', 'Train loss', 'Eval loss'], points, 'report-points')}</details>
${data.evaluation ? evaluationSection(data.evaluation) : '<p class="muted">No before/after evaluation was run in this session.</p>'}
${comparison}
</body></html>
`;
}

/**
 * An evaluation report as the files people download: JSON (the report as it is) and CSV (one line
 * per evaluated example and model, for a spreadsheet).
 */
import type { EvaluatedModel, EvaluationReport, ModelEvaluation } from './evaluate';

export function toJson(report: EvaluationReport, indent?: number): string {
  return JSON.stringify(report, null, indent);
}

export const CSV_COLUMNS = [
  'record',
  'model',
  'label',
  'index',
  'kind',
  'targets',
  'loss',
  'perplexity',
  'context_overlap',
  'uses_context',
  'citations',
  'missing_citations',
  'attributed',
  'f1',
  'exact_match',
  'context_usage',
  'source_attribution',
  'missing_source_rate',
  'mean_f1',
  'exact_match_rate',
  'response',
  'reference',
] as const;

type CsvRecord = Partial<Record<(typeof CSV_COLUMNS)[number], string | number | boolean | null>>;

/**
 * One `example` record per row and model, then one `summary` record per model and a `delta`
 * record (after - before). RFC 4180: fields with a comma, quote or line break are quoted, quotes
 * doubled; lines end with CRLF; empty fields where a figure does not apply.
 */
export function toCsv(report: EvaluationReport): string {
  const labels: Record<EvaluatedModel, string> = { before: report.before.label, after: report.after?.label ?? '' };
  const records: CsvRecord[] = report.examples.map((e) => ({
    record: 'example',
    model: e.model,
    label: labels[e.model],
    index: e.index,
    kind: e.kind,
    targets: e.targets,
    loss: e.loss,
    perplexity: e.perplexity,
    context_overlap: e.rag?.contextOverlap,
    uses_context: e.rag?.hasContext ? e.rag.usesContext : null,
    citations: e.rag ? e.rag.citations.join(' ') : null,
    missing_citations: e.rag ? e.rag.missingCitations.join(' ') : null,
    attributed: e.rag && e.rag.sourceIds.length > 0 ? e.rag.attributed : null,
    f1: e.rag?.f1,
    exact_match: e.rag?.exactMatch,
    response: e.rag?.response,
    reference: e.rag?.reference,
  }));
  const summary = (m: ModelEvaluation): CsvRecord => ({
    record: 'summary',
    model: m.model,
    label: m.label,
    targets: m.targets,
    loss: m.loss,
    perplexity: m.perplexity,
    missing_citations: m.rag?.missingCitations,
    context_usage: m.rag?.contextUsage,
    source_attribution: m.rag?.sourceAttribution,
    missing_source_rate: m.rag?.missingSourceRate,
    mean_f1: m.rag?.meanF1,
    exact_match_rate: m.rag?.exactMatchRate,
  });
  records.push(summary(report.before));
  if (report.after && report.delta) {
    const d = report.delta;
    records.push(summary(report.after), {
      record: 'delta',
      model: 'after-before',
      loss: d.loss,
      perplexity: d.perplexity,
      context_usage: d.contextUsage,
      source_attribution: d.sourceAttribution,
      missing_source_rate: d.missingSourceRate,
      mean_f1: d.meanF1,
      exact_match_rate: d.exactMatchRate,
    });
  }
  const lines = [CSV_COLUMNS.join(','), ...records.map((r) => CSV_COLUMNS.map((c) => csvField(r[c])).join(','))];
  return `${lines.join('\r\n')}\r\n`;
}

function csvField(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

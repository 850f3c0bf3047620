/**
 * Datasets that arrive as a list of rows rather than as lines: a JSON document holding an array
 * of row objects (`[{"text": ...}, ...]`), or the rows of a Parquet table. Each row is read like a
 * JSONL line (rowFromValue: the same shapes, the same reasons), and a refused row is reported with
 * its 1-based position (`entry`) and, for JSON, the line where it starts.
 */
import { addRow, emptyReport, excerpt, type ImportReport } from './import-report';
import { rowFromValue } from './jsonl';
import { arrayEntryLines } from './open-webui';

/** Text of any value for an excerpt; Parquet's INT64 columns are bigints, which JSON.stringify refuses. */
function shown(value: unknown): string {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
}

/** The entries of a parsed JSON array; `text` is the document, for the line each entry starts on. */
export function parseRowList(list: unknown[], text: string): ImportReport {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const report = emptyReport(lines.length);
  report.totalEntries = list.length;
  const starts = arrayEntryLines(text);
  list.forEach((entry, i) => {
    const result = rowFromValue(entry, 'entry');
    if (typeof result === 'string')
      report.errors.push({ line: starts[i] ?? 1, entry: i + 1, reason: result, excerpt: excerpt(shown(entry)) });
    else addRow(report, result.row, result.format);
  });
  return report;
}

/** Rows of a table (Parquet): the row number is both `line` and `entry`, since a table has no lines. */
export function parseRowObjects(rows: readonly unknown[]): ImportReport {
  const report = emptyReport(rows.length);
  report.totalEntries = rows.length;
  rows.forEach((row, i) => {
    const result = rowFromValue(row, 'row');
    if (typeof result === 'string') report.errors.push({ line: i + 1, entry: i + 1, reason: result, excerpt: excerpt(shown(row)) });
    else addRow(report, result.row, result.format);
  });
  return report;
}

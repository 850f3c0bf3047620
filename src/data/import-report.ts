/**
 * What every dataset import returns: the valid rows and, for everything else, where it is and why
 * it was refused. Imports never throw on bad data; the page shows the report, then stores the
 * valid rows in one transaction or nothing.
 */
import { SOURCE_FORMATS, type DatasetRow, type SourceFormat } from './types';

export interface LineError {
  /** 1-based, counting blank lines, as an editor shows them. For a JSON list: the line where the entry starts. */
  line: number;
  /** JSON list imports (Open WebUI's export): the 1-based position of the entry in the list. */
  entry?: number;
  reason: string;
  /** The line's (or entry's) first ~80 characters, control characters escaped so that binary lines stay printable. */
  excerpt: string;
}

export interface ImportReport {
  rows: DatasetRow[];
  /** The format of the valid rows: one format, 'mixed' when several occur, null when no row is valid. */
  format: SourceFormat | 'mixed' | null;
  /** Valid rows per source format. */
  formats: Record<SourceFormat, number>;
  /** Lines in the file, blank ones included (a final newline does not start a line). */
  totalLines: number;
  /** JSON list imports: the entries in the list. */
  totalEntries?: number;
  errors: LineError[];
  skippedBlank: number;
}

const EXCERPT_LENGTH = 80;

export function emptyReport(totalLines: number): ImportReport {
  const formats = Object.fromEntries(SOURCE_FORMATS.map((f) => [f, 0])) as Record<SourceFormat, number>;
  return { rows: [], format: null, formats, totalLines, errors: [], skippedBlank: 0 };
}

export function addRow(report: ImportReport, row: DatasetRow, format: SourceFormat): void {
  report.rows.push(row);
  report.formats[format]++;
  const seen = SOURCE_FORMATS.filter((f) => report.formats[f] > 0);
  report.format = seen.length === 1 ? seen[0] : 'mixed';
}

/** At most EXCERPT_LENGTH characters as displayed (escapes included), then an ellipsis if anything was left out. */
export function excerpt(line: string): string {
  let out = '';
  for (const char of line) {
    const shown = escapeControl(char);
    if (out.length + shown.length > EXCERPT_LENGTH) return `${out}…`;
    out += shown;
  }
  return out;
}

function escapeControl(char: string): string {
  if (char === '\t') return '\\t';
  if (char === '\r') return '\\r';
  const code = char.codePointAt(0)!;
  return code < 0x20 || (code >= 0x7f && code < 0xa0) ? `\\u${code.toString(16).padStart(4, '0')}` : char;
}

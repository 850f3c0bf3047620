/**
 * One dataset import, from a file of any size to a pending import in storage: the rows are
 * written chunk by chunk as they are parsed (a pending import is never listed as a dataset; the
 * summary written on commit makes it one), and what the preview shows is gathered on the way:
 * counts, the first rows, the first errors and the task analysis. Memory stays bounded: a slice of
 * the file, the line being parsed, one chunk of rows and the report.
 *
 * JSONL is streamed line by line (src/data/line-reader.ts). A JSON document (a list of rows, Open
 * WebUI's export) and a Parquet table are read whole by the parsers of src/data, so they are
 * refused above MAX_DOCUMENT_BYTES with the advice to use JSONL.
 */
import { DatasetAnalyzer, type DatasetAnalysis } from '../analysis/analyze';
import { type DatasetContainer, parseDatasetBytes } from '../data/import';
import { excerpt, type ImportReport, type LineError } from '../data/import-report';
import { fileExtension, parseJsonlLine } from '../data/jsonl';
import { detectEncoding, readLines } from '../data/line-reader';
import { SOURCE_FORMATS, type DatasetRow, type SourceFormat } from '../data/types';
import { RowChunker } from '../storage/dataset-store';
import type { WebtuneDb } from '../storage/db';
import { armedAt, holdForever, TEST_HOOKS } from '../testing/hooks';
import { EngineStateError } from './errors';

/** Refused lines kept for the report (the page lists 500); the count covers all of them. */
export const MAX_LISTED_ERRORS = 1000;
/** A JSON document or a Parquet table is parsed whole, so it must fit in memory several times over. */
export const MAX_DOCUMENT_BYTES = 256 * 2 ** 20;
/** Rows kept to show what was understood. */
const SAMPLE_ROWS = 5;
/** Conversations listed in the analysis (the page lists 500). */
const ANALYSED_CONVERSATIONS = 500;
const PROGRESS_EVERY_MS = 100;

export interface ImportProgress {
  bytesRead: number;
  totalBytes: number;
  lines: number;
  rows: number;
  invalid: number;
}

export class ImportCancelledError extends Error {
  override name = 'ImportCancelledError';
  constructor(fileName: string) {
    super(`The import of ${fileName} was cancelled; nothing of it is stored.`);
  }
}

/** What an import found: ImportReport without its rows (they are in storage), with the count of every refused line. */
export interface ImportSummary {
  format: ImportReport['format'];
  formats: Record<SourceFormat, number>;
  totalLines: number;
  totalEntries?: number;
  skippedBlank: number;
  rowCount: number;
  /** The first MAX_LISTED_ERRORS refused lines. */
  errors: LineError[];
  errorCount: number;
  sample: DatasetRow[];
  analysis: DatasetAnalysis;
  container: DatasetContainer;
  /** Chunks written for the pending import. */
  chunks: number;
}

export interface ImportControl {
  onProgress?: (progress: ImportProgress) => void;
  cancelled: () => boolean;
}

/** Collects the report of rows and refused lines, and writes the rows to the pending import `id` as chunks fill. */
class ImportWriter {
  readonly formats = Object.fromEntries(SOURCE_FORMATS.map((f) => [f, 0])) as Record<SourceFormat, number>;
  readonly errors: LineError[] = [];
  readonly sample: DatasetRow[] = [];
  readonly analyzer = new DatasetAnalyzer(ANALYSED_CONVERSATIONS);
  errorCount = 0;
  rowCount = 0;
  chunks = 0;
  readonly #chunker = new RowChunker();

  constructor(
    private readonly db: WebtuneDb,
    private readonly id: string,
    private readonly fileName: string,
    private readonly control: ImportControl,
  ) {}

  /** `format` null: the parser counted formats itself (see importReport). */
  async row(row: DatasetRow, format: SourceFormat | null): Promise<void> {
    this.rowCount++;
    if (format) this.formats[format]++;
    if (this.sample.length < SAMPLE_ROWS) this.sample.push(row);
    this.analyzer.add(row);
    const chunk = this.#chunker.add(row);
    if (chunk) await this.#write(chunk);
  }

  error(error: LineError): void {
    this.errorCount++;
    if (this.errors.length < MAX_LISTED_ERRORS) this.errors.push(error);
  }

  async finish(): Promise<void> {
    const chunk = this.#chunker.flush();
    if (chunk) await this.#write(chunk);
  }

  summary(parts: { totalLines: number; totalEntries?: number; skippedBlank: number; container: DatasetContainer }): ImportSummary {
    const seen = SOURCE_FORMATS.filter((f) => this.formats[f] > 0);
    return {
      ...parts,
      format: seen.length === 0 ? null : seen.length === 1 ? seen[0] : 'mixed',
      formats: this.formats,
      rowCount: this.rowCount,
      errors: this.errors,
      errorCount: this.errorCount,
      sample: this.sample,
      analysis: this.analyzer.result(),
      chunks: this.chunks,
    };
  }

  async #write(chunk: { rows: number; json: string }): Promise<void> {
    if (this.control.cancelled()) throw new ImportCancelledError(this.fileName);
    const index = this.chunks;
    await this.db.datasets.writeImportChunk(this.id, index, chunk, this.fileName);
    this.chunks++;
    if (TEST_HOOKS && armedAt('import:after-chunk', this.chunks) === 'hold') await holdForever();
  }
}

/**
 * Reads `file` into the pending import `id` (begun by the caller) and returns its report. Throws
 * ImportCancelledError when `control.cancelled()` turns true; the caller discards the import then.
 */
export async function importFile(db: WebtuneDb, id: string, file: Blob, fileName: string, control: ImportControl): Promise<ImportSummary> {
  const writer = new ImportWriter(db, id, fileName, control);
  const whole = await wholeFileKind(file, fileName);
  if (whole) {
    const { report, container } = await parseDatasetBytes(new Uint8Array(await file.arrayBuffer()), { fileName });
    control.onProgress?.({ bytesRead: file.size, totalBytes: file.size, lines: report.totalLines, rows: 0, invalid: 0 });
    return importReport(writer, report, container);
  }
  const extension = fileExtension(fileName);
  let lines = 0;
  let skippedBlank = 0;
  let bytesRead = 0;
  let reported = 0;
  const progress = (force: boolean) => {
    const now = performance.now();
    if (!force && now - reported < PROGRESS_EVERY_MS) return;
    reported = now;
    control.onProgress?.({ bytesRead, totalBytes: file.size, lines, rows: writer.rowCount, invalid: writer.errorCount });
  };
  const reader = readLines(file, {
    onBytes: (n) => {
      bytesRead = n;
      progress(false);
    },
  });
  for await (const line of reader) {
    lines = line.number;
    if (control.cancelled()) throw new ImportCancelledError(fileName);
    if (line.tooLongBytes === null && line.text.trim() === '') {
      skippedBlank++;
      continue;
    }
    const result = parseJsonlLine(line, extension);
    if (typeof result === 'string') writer.error({ line: line.number, reason: result, excerpt: excerpt(line.text.replace(/\r$/, '')) });
    else await writer.row(result.row, result.format);
  }
  await writer.finish();
  progress(true);
  return writer.summary({ totalLines: lines, skippedBlank, container: 'jsonl' });
}

/** A report parsed by src/data (a downloaded file, a JSON document, Parquet) into the pending import. */
async function importReport(writer: ImportWriter, report: ImportReport, container: DatasetContainer): Promise<ImportSummary> {
  for (const row of report.rows) await writer.row(row, null);
  Object.assign(writer.formats, report.formats);
  for (const error of report.errors) writer.error(error);
  await writer.finish();
  return writer.summary({ totalLines: report.totalLines, totalEntries: report.totalEntries, skippedBlank: report.skippedBlank, container });
}

/** Imports downloaded files (already in memory) into the pending import `id`, as one report. */
export async function importReports(
  db: WebtuneDb,
  id: string,
  fileName: string,
  reports: ImportReport[],
  container: DatasetContainer,
  control: ImportControl,
): Promise<ImportSummary> {
  return importReport(new ImportWriter(db, id, fileName, control), mergeReports(reports), container);
}

/**
 * How a file is read whole: 'parquet' by its magic bytes, 'json' when it starts as one JSON
 * document (as parseImport decides); null: line by line. A file that starts with "[" but is
 * neither .json nor small enough to read whole is JSONL whose first line is a list, and streams.
 */
async function wholeFileKind(file: Blob, fileName: string): Promise<'parquet' | 'json' | null> {
  const head = new Uint8Array(await file.slice(0, 4096).arrayBuffer());
  const kind =
    file.size >= 12 && String.fromCharCode(...head.subarray(0, 4)) === 'PAR1' ? 'parquet' : documentStart(head, fileName) ? 'json' : null;
  if (kind === null || file.size <= MAX_DOCUMENT_BYTES) return kind;
  if (kind === 'json' && !/\.json$/i.test(fileName)) return null;
  throw new EngineStateError(
    `${fileName} is ${(file.size / 2 ** 20).toFixed(0)} MiB; a ${kind === 'parquet' ? 'Parquet table' : 'JSON document'} is read ` +
      `whole, so webtune takes at most ${MAX_DOCUMENT_BYTES / 2 ** 20} MiB of one. Save the rows as JSONL (one object per line), ` +
      'which is read line by line at any size.',
  );
}

function documentStart(head: Uint8Array, fileName: string): boolean {
  const { encoding, bomBytes } = detectEncoding(head);
  const first = new TextDecoder(encoding).decode(head.subarray(bomBytes)).trimStart()[0];
  return first === '[' || (/\.json$/i.test(fileName) && first === '{');
}

/** The reports of a split's Parquet files as one: rows in order, positions counted over all files. */
function mergeReports(reports: ImportReport[]): ImportReport {
  const [first, ...rest] = reports;
  const merged: ImportReport = { ...first, rows: [...first.rows], errors: [...first.errors], formats: { ...first.formats } };
  for (const report of rest) {
    const offset = merged.totalEntries ?? merged.totalLines;
    merged.rows.push(...report.rows);
    merged.errors.push(
      ...report.errors.map((e) => ({ ...e, line: e.line + offset, entry: e.entry === undefined ? undefined : e.entry + offset })),
    );
    for (const [format, n] of Object.entries(report.formats)) merged.formats[format as keyof ImportReport['formats']] += n;
    merged.totalLines += report.totalLines;
    if (merged.totalEntries !== undefined) merged.totalEntries += report.totalEntries ?? 0;
    merged.skippedBlank += report.skippedBlank;
  }
  const seen = Object.entries(merged.formats).filter(([, n]) => n > 0);
  merged.format = seen.length === 0 ? null : seen.length === 1 ? (seen[0][0] as ImportReport['format']) : 'mixed';
  return merged;
}

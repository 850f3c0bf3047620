/**
 * A dropped dataset file, whatever it holds: a JSON list (Open WebUI's chat export) or JSONL in any
 * of the line formats of jsonl.ts (OpenAI-style exchange logs and ShareGPT among them). Every
 * format answers with the same ImportReport, errors pinned to a line (and, for a list, an entry).
 *
 * A JSON list that is not Open WebUI's (no entry holds a `chat` or a `history`) is a list of rows
 * in the JSONL shapes (rows.ts), and parseDatasetBytes also reads Parquet tables.
 *
 * A file is read as one JSON document when it starts with `[` (or, for a .json file, is one Open
 * WebUI chat object) and parses as a whole; a .json file starting with `[` that does not parse is
 * reported as one broken document. Anything else is read line by line, so a JSONL file whose first
 * line happens to be an array, or JSONL saved as .json, still gets its valid lines imported.
 */
import { decodeJsonlBytes, parseJsonl } from './jsonl';
import { isRecord } from './conversation';
import { emptyReport, excerpt, type ImportReport } from './import-report';
import { parseOpenWebUiExport } from './open-webui';
import { isParquet, parseParquetBytes } from './parquet';
import { parseRowList } from './rows';

export function parseImport(text: string, opts: { fileName?: string; invalidLines?: readonly number[] } = {}): ImportReport {
  const body = text.replace(/^\uFEFF/, '');
  const isJsonFile = /\.json$/i.test(opts.fileName ?? '');
  const first = body.trimStart()[0];
  if (first === '[' || (isJsonFile && first === '{')) {
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (err) {
      const message = (err as Error).message.replace(/\s+/g, ' ');
      if (isJsonFile && first === '[') {
        const reason = `broken JSON: ${message}; a .json file must hold one JSON document (Open WebUI's export is a list of chats)`;
        return brokenDocument(body, reason, lineOfPosition(body, message));
      }
      return parseJsonl(text, opts);
    }
    const list = Array.isArray(value) ? value : isRecord(value) && isRecord(value.chat) ? [value] : null;
    if (list) {
      const bad = opts.invalidLines ?? [];
      if (bad.length > 0)
        return brokenDocument(body, 'not text (binary data?): the line is not valid UTF-8, so the JSON document cannot be read', bad[0]);
      return isChatExport(list) ? parseOpenWebUiExport(list, body) : parseRowList(list, body);
    }
  }
  return parseJsonl(text, opts);
}

export function parseImportBytes(bytes: Uint8Array, opts: { fileName?: string } = {}): ImportReport {
  const { text, invalidLines } = decodeJsonlBytes(bytes);
  return parseImport(text, { ...opts, invalidLines });
}

/**
 * Open WebUI's export holds chats (`{"chat": ...}`, or in older exports chat objects with a
 * `history`); any other list is a list of rows in the JSONL shapes.
 */
function isChatExport(list: unknown[]): boolean {
  return list.some((entry) => isRecord(entry) && (isRecord(entry.chat) || isRecord(entry.history)));
}

/** What a dataset file holds on the outside, which decides how its errors are located (line, entry or row). */
export type DatasetContainer = 'jsonl' | 'json' | 'parquet';

/** Any dataset file: Parquet by its magic bytes, otherwise a JSON document or JSONL (parseImportBytes). */
export async function parseDatasetBytes(
  bytes: Uint8Array,
  opts: { fileName?: string } = {},
): Promise<{ report: ImportReport; container: DatasetContainer }> {
  if (isParquet(bytes)) return { report: await parseParquetBytes(bytes), container: 'parquet' };
  const report = parseImportBytes(bytes, opts);
  return { report, container: report.totalEntries === undefined ? 'jsonl' : 'json' };
}

/** The whole document refused, with the line where it went wrong (as far as the engine's JSON.parse message tells). */
function brokenDocument(text: string, reason: string, line: number): ImportReport {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const report = emptyReport(lines.length);
  report.errors.push({ line, reason, excerpt: excerpt(lines[line - 1] ?? '') });
  return report;
}

function lineOfPosition(text: string, message: string): number {
  const line = /\bline (\d+)/.exec(message);
  if (line) return Number(line[1]);
  const position = /position (\d+)/.exec(message);
  if (position) return text.slice(0, Number(position[1])).split('\n').length;
  return /end of JSON input/i.test(message) ? text.trimEnd().split('\n').length : 1;
}

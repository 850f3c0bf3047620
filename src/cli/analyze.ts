import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { analyzeDataset } from '../analysis/analyze';
import { parseImportBytes } from '../data/import';
import { errorLine } from './common';
import { UsageError } from './usage';

/** `analyze <data.jsonl | export.json>`: the task analysis and training recommendation as one JSON line. */
export async function analyzeCommand(args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError('analyze takes exactly one dataset file (JSONL, or an Open WebUI JSON export)');
  const path = resolve(args[0]);
  const report = parseImportBytes(new Uint8Array(await readFile(path)), { fileName: basename(path) });
  for (const error of report.errors) process.stderr.write(`${errorLine(args[0], error)}\n`);
  if (report.rows.length === 0) throw new UsageError(`${args[0]}: no valid rows`);
  process.stdout.write(`${JSON.stringify({ file: path, invalid_lines: report.errors.length, ...analyzeDataset(report.rows) })}\n`);
  return 0;
}

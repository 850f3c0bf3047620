import { writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_EVALUATION_SETTINGS as DEFAULTS, evaluate } from '../eval/evaluate';
import { toCsv, toJson } from '../eval/report-files';
import { prepTokenizerFor } from '../train/pipeline';
import { loadAdapter, loadOnGpu, nonNegative, positiveInt, readDataset, WEIGHTS_OPTION, weightPrecision } from './common';
import { MODEL_OPTIONS, openCliModel } from './model-arg';
import { UsageError } from './usage';

/**
 * `eval --model <dir> [--adapter <dir>] --data <jsonl> ...`: the evaluation report of the base
 * model (before) and base + adapter (after). The last stdout line is the report as JSON; --out
 * writes it in --format to a file, and without --out, --format csv prints the CSV first.
 */
export async function evalCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MODEL_OPTIONS,
      adapter: { type: 'string' },
      data: { type: 'string' },
      'max-new-tokens': { type: 'string', default: String(DEFAULTS.maxNewTokens) },
      temperature: { type: 'string', default: String(DEFAULTS.temperature) },
      'top-p': { type: 'string', default: String(DEFAULTS.topP) },
      seed: { type: 'string', default: String(DEFAULTS.seed) },
      'max-length': { type: 'string', default: String(DEFAULTS.maxLength) },
      batch: { type: 'string', default: String(DEFAULTS.batchSize) },
      format: { type: 'string', default: 'json' },
      out: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      ...WEIGHTS_OPTION,
    },
  });
  const precision = weightPrecision(values.weights);
  if (!values.data) throw new UsageError('eval needs --data <eval.jsonl>');
  if (values.format !== 'json' && values.format !== 'csv') throw new UsageError(`--format must be json or csv, got "${values.format}"`);
  const topP = nonNegative(values['top-p'], '--top-p');
  if (topP === 0 || topP > 1) throw new UsageError(`--top-p must be in (0, 1], got "${values['top-p']}"`);
  const settings = {
    maxNewTokens: positiveInt(values['max-new-tokens'], '--max-new-tokens'),
    temperature: nonNegative(values.temperature, '--temperature'),
    topP,
    seed: positiveInt(values.seed, '--seed', 0),
    maxLength: positiveInt(values['max-length'], '--max-length', 2),
    batchSize: positiveInt(values.batch, '--batch'),
  };
  const log = (line: string) => {
    if (!values.quiet) process.stderr.write(`${line}\n`);
  };
  const { opened } = await openCliModel(values);
  const rows = await readDataset(values.data, log);
  const { gpu, model } = await loadOnGpu(opened, precision, log);
  const adapter = values.adapter ? await loadAdapter(gpu, values.adapter, opened) : null;
  const report = await evaluate(model, prepTokenizerFor(opened), adapter, rows, {
    ...settings,
    adapterLabel: values.adapter ? basename(resolve(values.adapter)) : undefined,
    onProgress: (p) => log(`${p.model}: ${p.stage} ${p.done}/${p.total}`),
  });
  const csv = values.format === 'csv' ? toCsv(report) : null;
  if (values.out) {
    await writeFile(resolve(values.out), csv ?? `${toJson(report, 2)}\n`);
    log(`report written to ${resolve(values.out)}`);
  } else if (csv) {
    process.stdout.write(csv);
  }
  process.stdout.write(`${toJson(report)}\n`);
  return 0;
}

import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseImportBytes } from '../data/import';
import type { ImportReport, LineError } from '../data/import-report';
import type { DatasetRow } from '../data/types';
import type { AdapterTensors } from '../export/adapter';
import { readPeftAdapter } from '../export/peft';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import { LoraWeights } from '../lora/adapter';
import { LlamaModel } from '../model/llama';
import { nodeFileSource } from '../model/node-file-source';
import { isWeightPrecision, WEIGHT_PRECISIONS, type WeightPrecision } from '../model/weight-format';
import type { OpenedModel } from '../model/weights';
import { RECOMPUTE_MODES, type RecomputeMode } from '../train/settings';
import { UsageError } from './usage';

/**
 * The valid rows of a dataset file (JSONL in any line format, or Open WebUI's JSON export); invalid
 * lines (or list entries) are reported on stderr through `log`.
 */
export async function readDataset(path: string, log: (line: string) => void): Promise<DatasetRow[]> {
  const report: ImportReport = parseImportBytes(new Uint8Array(await readFile(resolve(path))), { fileName: basename(path) });
  for (const error of report.errors.slice(0, 20)) log(errorLine(path, error));
  if (report.errors.length > 20) log(`... and ${report.errors.length - 20} more invalid lines`);
  if (report.rows.length === 0) throw new UsageError(`${path}: no valid rows (${report.errors.length} invalid lines)`);
  if (report.errors.length) log(`${path}: using ${report.rows.length} valid rows, skipping ${report.errors.length} invalid lines`);
  return report.rows;
}

/** `file:line: reason`, with the list entry for JSON list imports (Open WebUI's export). */
export function errorLine(path: string, error: LineError): string {
  return `${path}:${error.line}: ${error.entry === undefined ? '' : `entry ${error.entry}: `}${error.reason}`;
}

/** The `--weights` option of every command that loads a model: how the weight matrices are stored on the GPU. */
export const WEIGHTS_OPTION = { weights: { type: 'string', default: 'auto' } } as const;

export function weightPrecision(text: string | undefined): WeightPrecision {
  const value = text ?? 'auto';
  if (!isWeightPrecision(value)) throw new UsageError(`--weights must be one of ${WEIGHT_PRECISIONS.join(', ')}, got "${value}"`);
  return value;
}

/**
 * A GPU device and the model's weights on it, stored as `precision` says ('auto': as in the
 * checkpoint); says on stderr what the GPU holds unless `log` is given to do that.
 */
export async function loadOnGpu(
  opened: OpenedModel,
  precision: WeightPrecision = 'auto',
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<{ gpu: Gpu; model: LlamaModel }> {
  const gpu = new Gpu(await createNodeDevice());
  const model = await LlamaModel.load(gpu, opened.weights, { precision });
  log(`weights on the GPU: ${model.precision} (${(model.weights.bytes / 2 ** 20).toFixed(1)} MiB)`);
  return { gpu, model };
}

export function readAdapterFolder(dir: string, opened: OpenedModel): Promise<AdapterTensors> {
  return readPeftAdapter(nodeFileSource(resolve(dir)), opened.config);
}

/** A PEFT adapter folder, on the GPU. */
export async function loadAdapter(gpu: Gpu, dir: string, opened: OpenedModel): Promise<LoraWeights> {
  const imported = await readAdapterFolder(dir, opened);
  return LoraWeights.fromTensors(gpu, opened.config, imported.config, imported.tensors, dir);
}

export function positiveInt(text: string, flag: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${text}"`);
  return value;
}

export function nonNegative(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${flag} must be a number >= 0, got "${text}"`);
  return value;
}

/** A size in GiB (e.g. `4` or `1.5`), in bytes. */
export function gibibytes(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} takes a size in GiB (e.g. 4), got "${text}"`);
  return Math.round(value * 2 ** 30);
}

export function recomputeMode(text: string, flag = '--recompute'): RecomputeMode {
  if (!(RECOMPUTE_MODES as readonly string[]).includes(text)) throw new UsageError(`${flag} must be auto, on or off, got "${text}"`);
  return text as RecomputeMode;
}

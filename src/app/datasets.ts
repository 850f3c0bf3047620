/**
 * Datasets: an import (a file, or a URL or Hub dataset, downloaded and cached; JSONL in any line
 * format, a JSON list, Open WebUI's export or Parquet) is parsed into a preview (nothing stored)
 * that the user commits or discards; stored datasets feed the task analysis, the preset plan, the
 * quality filter report and the citation enhancement.
 */
import { analyzeDataset, type DatasetAnalysis } from '../analysis/analyze';
import { builtinPresets, type Preset } from '../analysis/presets';
import { type DatasetContainer, parseDatasetBytes } from '../data/import';
import type { ImportReport } from '../data/import-report';
import { newId, type DatasetRecord, type DatasetSummary, type WebtuneDb } from '../storage/db';
import type { DatasetPreview, HubProgress } from './api';
import { downloadDataset, type DownloadedFile } from './dataset-downloads';
import { datasetSourceName, datasetSourceString, parseDatasetSource } from './dataset-sources';
import { type EnhancementReport, enhancedDataset, enhancementReport } from './enhance';
import { EngineStateError } from './errors';
import { type FilterOptions, type FilterReport, filterReport } from './quality-filter';
import { type PresetPlan, type PresetPlanRequest, planPreset } from './run-plan';

/** Rows shown in a preview, to show what was understood. */
const SAMPLE_ROWS = 5;

interface Preview {
  name: string;
  fileName: string;
  report: ImportReport;
  source: string | null;
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

export class DatasetService {
  readonly #previews = new Map<string, Preview>();

  constructor(private readonly storage: () => Promise<WebtuneDb>) {}

  async preview(name: string, file: Blob, fileName: string): Promise<DatasetPreview> {
    const { report, container } = await parseDatasetBytes(new Uint8Array(await file.arrayBuffer()), { fileName });
    return this.#preview(name, fileName, report, container, null);
  }

  /** Downloads (or reads from the cache) a URL or Hub dataset and previews it like a file. */
  async previewSource(input: string, onProgress?: (progress: HubProgress) => void): Promise<DatasetPreview> {
    const source = parseDatasetSource(input, globalThis.location?.origin ?? '');
    const files: DownloadedFile[] = await downloadDataset(await this.storage(), source, onProgress);
    const parsed = [];
    for (const file of files) parsed.push(await parseDatasetBytes(file.bytes, { fileName: file.name }));
    // As for files: "zog_stories_train.jsonl" is stored as "zog stories train".
    const name =
      source.kind === 'url'
        ? datasetSourceName(source)
            .replace(/\.(jsonl|json|parquet)$/i, '')
            .replace(/[_-]+/g, ' ')
        : datasetSourceName(source);
    return this.#preview(
      name,
      datasetSourceName(source),
      mergeReports(parsed.map((p) => p.report)),
      parsed[0].container,
      datasetSourceString(source),
    );
  }

  #preview(name: string, fileName: string, report: ImportReport, container: DatasetContainer, source: string | null): DatasetPreview {
    const previewId = newId('preview');
    const label = name.trim() || fileName;
    this.#previews.set(previewId, { name: label, fileName, report, source });
    return {
      previewId,
      name: label,
      fileName,
      format: report.format,
      formats: report.formats,
      totalLines: report.totalLines,
      validRows: report.rows.length,
      skippedBlank: report.skippedBlank,
      errors: report.errors,
      sample: report.rows.slice(0, SAMPLE_ROWS),
      analysis: analyzeDataset(report.rows),
      container,
      source,
    };
  }

  /** Stores the preview's valid rows in one transaction. */
  async commit(previewId: string, name?: string): Promise<DatasetSummary> {
    const preview = this.#previews.get(previewId);
    if (!preview) throw new EngineStateError('This import preview is gone (it was imported or cancelled already); choose the file again.');
    const { report } = preview;
    if (report.rows.length === 0) {
      throw new EngineStateError(
        `${preview.fileName} has no valid rows to import; fix the lines listed in the report and choose it again.`,
      );
    }
    const record: DatasetRecord = {
      id: newId('ds'),
      name: name?.trim() || preview.name,
      createdAt: Date.now(),
      format: report.format ?? 'mixed',
      rowCount: report.rows.length,
      rows: report.rows,
      invalidLineCount: report.errors.length,
      sourceFileName: preview.fileName,
      ...(preview.source ? { source: preview.source } : {}),
    };
    await (await this.storage()).saveDataset(record);
    this.#previews.delete(previewId);
    const { rows: _, ...summary } = record;
    return summary;
  }

  discard(previewId: string): void {
    this.#previews.delete(previewId);
  }

  async list(): Promise<DatasetSummary[]> {
    return (await this.storage()).listDatasets();
  }

  async delete(id: string): Promise<void> {
    await (await this.storage()).deleteDataset(id);
  }

  async analyze(datasetId: string): Promise<DatasetAnalysis> {
    return analyzeDataset(await this.#rows(datasetId));
  }

  presets(): Preset[] {
    return builtinPresets();
  }

  async planPreset(request: PresetPlanRequest): Promise<PresetPlan> {
    return planPreset(await this.#rows(request.datasetId), request);
  }

  async previewFilter(datasetId: string, options: FilterOptions): Promise<FilterReport> {
    return filterReport(await this.#rows(datasetId), options);
  }

  async previewEnhancement(datasetId: string): Promise<EnhancementReport> {
    return enhancementReport(await (await this.storage()).getDataset(datasetId));
  }

  async applyEnhancement(datasetId: string, name?: string): Promise<DatasetSummary> {
    const db = await this.storage();
    const record = enhancedDataset(await db.getDataset(datasetId), name);
    await db.saveDataset(record);
    const { rows: _, ...summary } = record;
    return summary;
  }

  async #rows(datasetId: string) {
    return (await (await this.storage()).getDataset(datasetId)).rows;
  }
}

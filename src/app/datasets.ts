/**
 * Datasets: an import (JSONL in any line format, or Open WebUI's JSON export: parseImportBytes) is
 * parsed into a preview (nothing stored) that the user commits or discards; stored datasets feed
 * the task analysis, the preset plan, the quality filter report and the citation enhancement.
 */
import { analyzeDataset, type DatasetAnalysis } from '../analysis/analyze';
import { builtinPresets, type Preset } from '../analysis/presets';
import type { ImportReport } from '../data/import-report';
import { parseImportBytes } from '../data/import';
import { newId, type DatasetRecord, type DatasetSummary, type WebtuneDb } from '../storage/db';
import type { DatasetPreview } from './api';
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
}

export class DatasetService {
  readonly #previews = new Map<string, Preview>();

  constructor(private readonly storage: () => Promise<WebtuneDb>) {}

  async preview(name: string, file: Blob, fileName: string): Promise<DatasetPreview> {
    const report = parseImportBytes(new Uint8Array(await file.arrayBuffer()), { fileName });
    const previewId = newId('preview');
    const label = name.trim() || fileName;
    this.#previews.set(previewId, { name: label, fileName, report });
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

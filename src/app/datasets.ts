/**
 * Datasets: an import (a file, or a URL or Hub dataset, downloaded and cached; JSONL in any line
 * format, a JSON list, Open WebUI's export or Parquet) is read into a pending import (stored in
 * chunks, listed nowhere) and a preview, which the user commits (the dataset's summary is written,
 * and only then it exists) or discards (the chunks go); stored datasets feed the task analysis, the
 * preset plan, the quality filter report and the citation enhancement.
 */
import { DatasetAnalyzer, type DatasetAnalysis } from '../analysis/analyze';
import { builtinPresets, type Preset } from '../analysis/presets';
import { parseDatasetBytes } from '../data/import';
import { newId, type DatasetSummary, type WebtuneDb } from '../storage/db';
import type { DatasetPreview, HubProgress } from './api';
import { downloadDataset, type DownloadedFile } from './dataset-downloads';
import { type ImportControl, type ImportProgress, type ImportSummary, importFile, importReports } from './dataset-import';
import { datasetSourceName, datasetSourceString, parseDatasetSource } from './dataset-sources';
import { type EnhancementReport, enhancedDataset, enhancementReport } from './enhance';
import { EngineStateError } from './errors';
import { heldLocks, IMPORT_LOCK_PREFIX, locksAvailable, tryLock } from './locks';
import { type FilterOptions, type FilterReport, filterReport } from './quality-filter';
import { type PresetPlan, type PresetPlanRequest, planPreset } from './run-plan';

/** Conversations listed in an analysis (the page lists 500); the figures cover every row. */
const ANALYSED_CONVERSATIONS = 500;

/** An import waiting to be committed or discarded: its rows are in storage as a pending import. */
interface Preview {
  datasetId: string;
  name: string;
  fileName: string;
  summary: ImportSummary;
  source: string | null;
  /** Lets go of the import's Web Lock, so that a later start may remove it if it is abandoned. */
  release: () => void;
}

export class DatasetService {
  readonly #previews = new Map<string, Preview>();
  /** Imports being read now; `cancel` marks them all. */
  readonly #running = new Set<{ cancelled: boolean }>();

  constructor(private readonly storage: () => Promise<WebtuneDb>) {}

  /** Streams the file into a pending import and previews it (nothing is listed until commit). */
  async preview(name: string, file: Blob, fileName: string, onProgress?: (progress: ImportProgress) => void): Promise<DatasetPreview> {
    return this.#import(name, fileName, null, (db, id, control) => importFile(db, id, file, fileName, { ...control, onProgress }));
  }

  /** Downloads (or reads from the cache) a URL or Hub dataset and previews it like a file. */
  async previewSource(input: string, onProgress?: (progress: HubProgress) => void): Promise<DatasetPreview> {
    const source = parseDatasetSource(input, globalThis.location?.origin ?? '');
    const files: DownloadedFile[] = await downloadDataset(await this.storage(), source, onProgress);
    const parsed: Awaited<ReturnType<typeof parseDatasetBytes>>[] = [];
    for (const file of files) parsed.push(await parseDatasetBytes(file.bytes, { fileName: file.name }));
    // As for files: "zog_stories_train.jsonl" is stored as "zog stories train".
    const name =
      source.kind === 'url'
        ? datasetSourceName(source)
            .replace(/\.(jsonl|json|parquet)$/i, '')
            .replace(/[_-]+/g, ' ')
        : datasetSourceName(source);
    const fileName = datasetSourceName(source);
    const reports = parsed.map((p) => p.report);
    return this.#import(name, fileName, datasetSourceString(source), (db, id, control) =>
      importReports(db, id, fileName, reports, parsed[0].container, control),
    );
  }

  /** Marks every import being read as cancelled: it stops at its next line and leaves nothing stored. */
  cancel(): void {
    for (const job of this.#running) job.cancelled = true;
  }

  /**
   * Removes what imports left behind when their tab closed or crashed before commit or cancel.
   * Only where Web Locks tell which imports other tabs are still writing (in Node nothing is removed).
   */
  async removeAbandonedImports(): Promise<string[]> {
    if (!locksAvailable()) return [];
    return (await this.storage()).datasets.removeAbandonedImports(await heldLocks(IMPORT_LOCK_PREFIX));
  }

  async #import(
    name: string,
    fileName: string,
    source: string | null,
    read: (db: WebtuneDb, id: string, control: ImportControl) => Promise<ImportSummary>,
  ): Promise<DatasetPreview> {
    const db = await this.storage();
    const datasetId = newId('ds');
    // A new id: nobody else holds its lock. Held until commit or discard, so no other tab removes the import meanwhile.
    const lock = (await tryLock(IMPORT_LOCK_PREFIX + datasetId))!;
    const job = { cancelled: false };
    this.#running.add(job);
    try {
      await db.datasets.beginImport(datasetId, fileName);
      const summary = await read(db, datasetId, { cancelled: () => job.cancelled });
      const previewId = newId('preview');
      const label = name.trim() || fileName;
      this.#previews.set(previewId, { datasetId, name: label, fileName, summary, source, release: lock.release });
      return {
        previewId,
        name: label,
        fileName,
        format: summary.format,
        formats: summary.formats,
        totalLines: summary.totalLines,
        validRows: summary.rowCount,
        skippedBlank: summary.skippedBlank,
        errors: summary.errors,
        errorCount: summary.errorCount,
        sample: summary.sample,
        analysis: summary.analysis,
        container: summary.container,
        source,
      };
    } catch (error) {
      await db.datasets.discardImport(datasetId).catch(() => undefined);
      lock.release();
      throw error;
    } finally {
      this.#running.delete(job);
    }
  }

  /** Makes the preview's pending import a dataset: its summary is written, in one transaction. */
  async commit(previewId: string, name?: string): Promise<DatasetSummary> {
    const preview = this.#previews.get(previewId);
    if (!preview) throw new EngineStateError('This import preview is gone (it was imported or cancelled already); choose the file again.');
    const { summary } = preview;
    if (summary.rowCount === 0) {
      throw new EngineStateError(
        `${preview.fileName} has no valid rows to import; fix the lines listed in the report and choose it again.`,
      );
    }
    const dataset: DatasetSummary = {
      id: preview.datasetId,
      name: name?.trim() || preview.name,
      createdAt: Date.now(),
      format: summary.format ?? 'mixed',
      rowCount: summary.rowCount,
      invalidLineCount: summary.errorCount,
      sourceFileName: preview.fileName,
      ...(preview.source ? { source: preview.source } : {}),
    };
    await (await this.storage()).datasets.commitImport(dataset, summary.chunks);
    this.#previews.delete(previewId);
    preview.release();
    return dataset;
  }

  async discard(previewId: string): Promise<void> {
    const preview = this.#previews.get(previewId);
    if (!preview) return;
    this.#previews.delete(previewId);
    await (await this.storage()).datasets.discardImport(preview.datasetId);
    preview.release();
  }

  async list(): Promise<DatasetSummary[]> {
    return (await this.storage()).listDatasets();
  }

  async delete(id: string): Promise<void> {
    await (await this.storage()).deleteDataset(id);
  }

  /** Chunk by chunk, so a large dataset is analysed without holding its rows. */
  async analyze(datasetId: string): Promise<DatasetAnalysis> {
    const analyzer = new DatasetAnalyzer(ANALYSED_CONVERSATIONS);
    await (await this.storage()).datasets.forEachChunk(datasetId, (rows) => {
      for (const row of rows) analyzer.add(row);
    });
    return analyzer.result();
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

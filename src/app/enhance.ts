/**
 * The citation enhancement (src/rag/enhance-citations.ts) on a stored dataset: first a report of
 * what it would change, row by row, then, once the user accepts, the enhanced rows as a new dataset.
 * The original dataset is never changed, so runs trained on it still resume on the same rows.
 */
import { parseContext } from '../rag/context';
import { CITATION_OVERLAP_THRESHOLD, enhanceCitations, type RowEnhancement } from '../rag/enhance-citations';
import { newId, type DatasetRecord } from '../storage/db';
import { EngineStateError } from './errors';

export type { RowEnhancement };

export interface EnhancementReport {
  datasetId: string;
  datasetName: string;
  totalRows: number;
  /** Chat rows whose system message has a `Context:` block with numbered sources: the rows the rule reads. */
  ragRows: number;
  rowsChanged: number;
  citationsAdded: number;
  threshold: number;
  /** Only the rows that change, each sentence with the source it gains and their overlap. */
  rows: RowEnhancement[];
}

const isRagRow = (row: DatasetRecord['rows'][number]) =>
  row.kind === 'chat' && row.messages.some((m) => m.role === 'system' && (parseContext(m.content)?.length ?? 0) > 0);

export function enhancementReport(dataset: DatasetRecord): EnhancementReport {
  const preview = enhanceCitations(dataset.rows);
  return {
    datasetId: dataset.id,
    datasetName: dataset.name,
    totalRows: dataset.rows.length,
    ragRows: dataset.rows.filter(isRagRow).length,
    rowsChanged: preview.rowsChanged,
    citationsAdded: preview.citationsAdded,
    threshold: CITATION_OVERLAP_THRESHOLD,
    rows: preview.rows,
  };
}

/** A new dataset with the enhanced rows (the rule is deterministic, so they are exactly the ones previewed). */
export function enhancedDataset(dataset: DatasetRecord, name?: string): DatasetRecord {
  const preview = enhanceCitations(dataset.rows);
  if (preview.rowsChanged === 0) {
    throw new EngineStateError(`The citation enhancement changes no row of "${dataset.name}", so there is nothing to store.`);
  }
  return {
    ...dataset,
    id: newId('ds'),
    name: name?.trim() || `${dataset.name} (citations added)`,
    createdAt: Date.now(),
    rows: preview.enhanced,
  };
}

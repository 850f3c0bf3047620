/**
 * The quality filter as the engine applies it to a stored dataset: a report for the page (how many
 * rows each rule removed, and those rows) and the rows a run trains on. Runs store their filter
 * options rather than the kept rows: filterDataset is deterministic, so a resumed run recomputes
 * exactly the rows it started with.
 */
import { filterDataset, type FilterOptions, type FilterRule, type RemovedRow } from '../analysis/filter';
import type { DatasetRow } from '../data/types';

export type { FilterOptions, FilterRule, RemovedRow };

export interface FilterReport {
  options: FilterOptions;
  totalRows: number;
  keptRows: number;
  /** Per rule, the rows it removed; a row is removed by the first rule it breaks, so no row is counted twice. */
  removed: Record<FilterRule, RemovedRow[]>;
}

/** Filter options that cannot work, or a filter that leaves nothing to train on; the message says what to change. */
export class QualityFilterError extends Error {
  override name = 'QualityFilterError';
}

function checkFilterOptions(options: FilterOptions): FilterOptions {
  const { minResponseChars: min, maxResponseChars: max, nearDuplicateJaccard: jaccard } = options;
  if (!Number.isInteger(min) || min < 0)
    throw new QualityFilterError(`Quality filter "minResponseChars": must be a whole number >= 0, got ${min}`);
  if (!Number.isInteger(max) || max < 1)
    throw new QualityFilterError(`Quality filter "maxResponseChars": must be a positive whole number, got ${max}`);
  if (max < min) throw new QualityFilterError(`Quality filter "maxResponseChars": must be at least minResponseChars (${min}), got ${max}`);
  if (jaccard !== undefined && !(jaccard > 0 && jaccard <= 1)) {
    throw new QualityFilterError(`Quality filter "nearDuplicateJaccard": must be in (0, 1], got ${jaccard}`);
  }
  return options;
}

export function filterReport(rows: DatasetRow[], options: FilterOptions): FilterReport {
  const result = filterDataset(rows, checkFilterOptions(options));
  return { options, totalRows: rows.length, keptRows: result.kept.length, removed: result.removed };
}

/** The rows a run trains on: all of them without a filter. */
export function filteredRows(rows: DatasetRow[], options: FilterOptions | null, datasetName: string): DatasetRow[] {
  if (!options) return rows;
  const { kept } = filterDataset(rows, checkFilterOptions(options));
  if (kept.length === 0) {
    throw new QualityFilterError(
      `The quality filter removes all ${rows.length} rows of "${datasetName}"; widen the response length bounds ` +
        `(${options.minResponseChars} to ${options.maxResponseChars} characters) or train without the filter.`,
    );
  }
  return kept;
}

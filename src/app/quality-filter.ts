/**
 * The quality filter as the engine applies it to a stored dataset: a report for the page (how many
 * rows each rule removed, and those rows) and the rows a run trains on. Runs store their filter
 * options rather than the kept rows: filterDataset is deterministic, so a resumed run recomputes
 * exactly the rows it started with.
 */
import { FILTER_RULE_ORDER, filterDataset, type FilterOptions, type FilterRuleId, type RemovedRow } from '../analysis/filter';
import type { DatasetRow } from '../data/types';

export type { FilterOptions, FilterRuleId, RemovedRow };

export interface FilterReport {
  options: FilterOptions;
  totalRows: number;
  keptRows: number;
  /**
   * Per rule (the task filter `other_task` first), the rows it removed; a row is removed by the
   * first rule it breaks, so no row is counted twice.
   */
  removed: Record<FilterRuleId, RemovedRow[]>;
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

/** What to change when a rule removed rows, for the message of a filter that leaves nothing. */
const REMEDY: Record<FilterRuleId, (o: FilterOptions) => string> = {
  other_task: (o) => `turn the task filter off (it keeps only ${o.keepTask} conversations)`,
  empty_turn: () => 'fill or drop the empty turns',
  no_assistant_turn: () => 'add assistant turns to learn from',
  response_length: (o) => `widen the response length bounds (${o.minResponseChars} to ${o.maxResponseChars} characters)`,
  exact_duplicate: () => 'add rows that are not copies',
  near_duplicate: () => 'raise the near-duplicate threshold',
};

/**
 * Why the filter leaves no row: each rule that removed rows with its count, largest first, and what
 * to change; null while some row is kept.
 */
export function emptyFilterMessage(report: Pick<FilterReport, 'options' | 'totalRows' | 'keptRows' | 'removed'>, datasetName: string) {
  if (report.keptRows > 0 || report.totalRows === 0) return null;
  const rules = FILTER_RULE_ORDER.filter((rule) => report.removed[rule].length > 0).sort(
    (a, b) => report.removed[b].length - report.removed[a].length,
  );
  const counts = rules.map((rule) => `${rule} removed ${report.removed[rule].length}`).join(', ');
  const remedies = rules.map((rule) => REMEDY[rule](report.options)).join(', or ');
  const head = `The quality filter removes all ${report.totalRows} rows of "${datasetName}"`;
  return `${head} (${counts}); ${remedies}, or train without the filter.`;
}

/** The rows a run trains on: all of them without a filter. */
export function filteredRows(rows: DatasetRow[], options: FilterOptions | null, datasetName: string): DatasetRow[] {
  if (!options) return rows;
  const result = filterDataset(rows, checkFilterOptions(options));
  const empty = emptyFilterMessage({ options, totalRows: rows.length, keptRows: result.kept.length, removed: result.removed }, datasetName);
  if (empty) throw new QualityFilterError(empty);
  return result.kept;
}

/** What the quality filter removes before training, rule by rule, with the removed rows to look at. */
import { FILTER_RULE_ORDER, type FilterRuleId } from '../../analysis/filter';
import type { FilterReport } from '../../app/api';
import { emptyFilterMessage } from '../../app/quality-filter';
import { clip, el, plural, rowText } from '../dom';

export const RULE_LABELS: Record<FilterRuleId, string> = {
  other_task: 'Another task (task filter)',
  empty_turn: 'Empty turn',
  no_assistant_turn: 'No assistant turn',
  response_length: 'Response length out of bounds',
  exact_duplicate: 'Exact duplicate',
  near_duplicate: 'Near duplicate',
};

/** Removed rows drawn per rule; a noisy dataset can lose thousands, and the count says how many. */
const SHOWN_ROWS = 200;

function ruleView(rule: FilterRuleId, report: FilterReport): HTMLElement {
  const removed = report.removed[rule];
  const rows = removed
    .slice(0, SHOWN_ROWS)
    .map((r) =>
      el(
        'li',
        { 'data-testid': 'removed-row', 'data-index': r.index, 'data-rule': r.rule },
        el('strong', {}, `row ${r.index + 1}`),
        ` · ${r.reason}`,
        el('div', { class: 'muted small excerpt' }, clip(rowText(r.row), 300)),
      ),
    );
  return el(
    'li',
    { class: 'filter-rule', 'data-testid': 'filter-rule', 'data-rule': rule, 'data-count': removed.length },
    removed.length
      ? el(
          'details',
          {},
          el('summary', {}, `${RULE_LABELS[rule]}: `, el('strong', {}, plural(removed.length, 'row')), ' removed'),
          el('ol', { class: 'removed-rows' }, ...rows),
          removed.length > SHOWN_ROWS ? el('p', { class: 'muted small' }, `${removed.length - SHOWN_ROWS} more are not listed.`) : null,
        )
      : el('span', { class: 'muted' }, `${RULE_LABELS[rule]}: none removed`),
  );
}

export function filterReportView(report: FilterReport, datasetName = 'the training data'): HTMLElement {
  const { minResponseChars, maxResponseChars, keepTask } = report.options;
  // The task filter's line only while it is on; the other rules always run.
  const rules = FILTER_RULE_ORDER.filter((rule) => rule !== 'other_task' || keepTask);
  const empty = emptyFilterMessage(report, datasetName);
  return el(
    'div',
    { class: 'filter-report', 'data-testid': 'filter-report', 'data-kept': report.keptRows, 'data-total': report.totalRows },
    el(
      'p',
      {},
      el('strong', { 'data-testid': 'filter-kept' }, `Trains on ${report.keptRows} of ${plural(report.totalRows, 'row')}`),
      keepTask ? `: only ${keepTask} conversations,` : ':',
      ` responses of ${minResponseChars} to ${maxResponseChars} characters, no empty turns, no duplicates; ` +
        'rules apply in this order and each removed row counts once.',
    ),
    empty ? el('p', { class: 'notice', 'data-kind': 'error', 'data-testid': 'filter-empty' }, empty) : null,
    el('ul', { class: 'filter-rules' }, ...rules.map((rule) => ruleView(rule, report))),
  );
}

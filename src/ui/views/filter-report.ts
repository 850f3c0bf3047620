/** What the quality filter removes before training, rule by rule, with the removed rows to look at. */
import { FILTER_RULES, type FilterRule } from '../../analysis/filter';
import type { FilterReport } from '../../app/api';
import { clip, el, plural, rowText } from '../dom';

const RULE_LABELS: Record<FilterRule, string> = {
  empty_turn: 'Empty turn',
  no_assistant_turn: 'No assistant turn',
  response_length: 'Response length out of bounds',
  exact_duplicate: 'Exact duplicate',
  near_duplicate: 'Near duplicate',
};

/** Removed rows drawn per rule; a noisy dataset can lose thousands, and the count says how many. */
const SHOWN_ROWS = 200;

function ruleView(rule: FilterRule, report: FilterReport): HTMLElement {
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

export function filterReportView(report: FilterReport): HTMLElement {
  const { minResponseChars, maxResponseChars } = report.options;
  return el(
    'div',
    { class: 'filter-report', 'data-testid': 'filter-report', 'data-kept': report.keptRows, 'data-total': report.totalRows },
    el(
      'p',
      {},
      el('strong', { 'data-testid': 'filter-kept' }, `Trains on ${report.keptRows} of ${plural(report.totalRows, 'row')}`),
      `: responses of ${minResponseChars} to ${maxResponseChars} characters, no empty turns, no duplicates; ` +
        'rules apply in this order and each removed row counts once.',
    ),
    el('ul', { class: 'filter-rules' }, ...FILTER_RULES.map((rule) => ruleView(rule, report))),
  );
}

/**
 * The task analysis of a dataset (src/analysis/analyze.ts) as the data step shows it: what the
 * conversations are about, why each was classified as it was, and the training recommendation.
 */
import type { QuestionType } from '../../analysis/analyze';
import type { Strategy } from '../../analysis/recommend';
import { TASK_IDS, type TaskId } from '../../analysis/tasks';
import type { DatasetAnalysis } from '../../app/api';
import { el, plural } from '../dom';

const TASK_LABELS: Record<TaskId, string> = {
  rag_enhanced: 'RAG: grounded answers with citations',
  code_generation: 'Code generation',
  technical_implementation: 'Technical how-to',
  ai_ml_education: 'AI/ML education',
  conversational_chat: 'Conversational chat',
};

export const STRATEGY_LABELS: Record<Strategy, string> = {
  single: 'Single task',
  multi: 'Multi-task (one weighted mix)',
  progressive: 'Progressive (one stage per task)',
};

const QUESTION_LABELS: Record<QuestionType, string> = { how_to: 'How-to', definition: 'Definition', other: 'Other' };

/** Conversations drawn in the expandable list; the counts above cover all of them. */
const SHOWN_CONVERSATIONS = 500;

const percent = (share: number) => `${(100 * share).toFixed(1)}%`;

function recommendationView(analysis: DatasetAnalysis): HTMLElement {
  const r = analysis.recommendation;
  const weights = r.mixWeights
    ? el(
        'p',
        { class: 'small' },
        'Mix weights: ',
        Object.entries(r.mixWeights)
          .map(([task, weight]) => `${task} ${percent(weight ?? 0)}`)
          .join(', '),
      )
    : null;
  return el(
    'div',
    { class: 'recommendation', 'data-testid': 'recommendation', 'data-strategy': r.strategy },
    el(
      'p',
      {},
      el('strong', {}, `Recommended: ${STRATEGY_LABELS[r.strategy]}`),
      r.presetIds.length ? ` · preset${r.presetIds.length > 1 ? 's in order' : ''}: ${r.presetIds.join(' → ')}` : '',
    ),
    weights,
    el('ul', { class: 'reasons' }, ...r.reasons.map((reason) => el('li', { 'data-testid': 'recommendation-reason' }, reason))),
    r.taskFilter
      ? el(
          'p',
          { class: 'small', 'data-testid': 'recommendation-task-filter', 'data-task': r.taskFilter },
          `Task filter: with the ${r.taskFilter} preset, training keeps only the ${analysis.distribution[r.taskFilter].count} ` +
            `${r.taskFilter} conversations (rule other_task, on by default; the quality filter in step 3 counts what it sets aside ` +
            'and can turn it off).',
        )
      : null,
    r.nextSteps.length
      ? el(
          'div',
          { class: 'next-steps', 'data-testid': 'next-steps' },
          el('p', { class: 'small' }, el('strong', {}, 'Next steps'), ', once the single-task run has results:'),
          el(
            'ul',
            { class: 'reasons' },
            ...r.nextSteps.map((step) =>
              el(
                'li',
                { 'data-testid': 'next-step', 'data-strategy': step.strategy },
                el('strong', {}, STRATEGY_LABELS[step.strategy]),
                ` · preset${step.presetIds.length > 1 ? 's in order' : ''}: ${step.presetIds.join(' → ')} · `,
                step.reason,
              ),
            ),
          ),
        )
      : null,
  );
}

function distributionView(analysis: DatasetAnalysis): HTMLElement {
  const rows = TASK_IDS.map((task) => {
    const d = analysis.distribution[task];
    return el(
      'tr',
      { 'data-testid': 'task-row', 'data-task': task, 'data-count': d.count, 'data-percent': d.percent, 'data-mean-score': d.meanScore },
      el('td', {}, TASK_LABELS[task], ' ', el('code', { class: 'muted' }, task)),
      el('td', { class: 'num' }, String(d.count)),
      el('td', { class: 'num' }, `${d.percent.toFixed(1)}%`, el('span', { class: 'share-bar', style: `--share: ${d.percent}%` })),
      el('td', { class: 'num' }, d.meanScore.toFixed(2)),
    );
  });
  return el(
    'table',
    { class: 'table', 'data-testid': 'task-distribution' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', {}, 'Primary task'),
        el('th', {}, 'Conversations'),
        el('th', {}, 'Share'),
        el('th', { title: 'Mean of the task score (0 to 1) over all conversations' }, 'Mean score'),
      ),
    ),
    el('tbody', {}, ...rows),
  );
}

function conversationsView(analysis: DatasetAnalysis): HTMLElement {
  const items = analysis.perConversation
    .slice(0, SHOWN_CONVERSATIONS)
    .map((c) =>
      el(
        'li',
        { 'data-testid': 'conversation', 'data-index': c.index, 'data-task': c.primaryTask },
        el(
          'details',
          {},
          el(
            'summary',
            {},
            `row ${c.index + 1} · `,
            el('strong', {}, c.primaryTask),
            ` (score ${c.scores[c.primaryTask].toFixed(2)}) · ${plural(c.signals.length, 'signal')}`,
          ),
          c.signals.length
            ? el(
                'ul',
                { class: 'signals' },
                ...c.signals.map((s) =>
                  el(
                    'li',
                    { 'data-testid': 'signal', 'data-signal': s.id },
                    el('code', {}, s.id),
                    ` +${s.weight} ${s.task} · `,
                    el('span', { class: 'muted' }, s.evidence),
                  ),
                ),
              )
            : el('p', { class: 'muted small' }, 'No signal fired, so it counts as conversational chat.'),
        ),
      ),
    );
  return el(
    'details',
    { class: 'conversations', 'data-testid': 'conversation-list' },
    el('summary', {}, `Per conversation: primary task and the signals that fired (${analysis.conversations})`),
    el('ol', { class: 'conversation-items' }, ...items),
    analysis.conversations > SHOWN_CONVERSATIONS
      ? el('p', { class: 'muted small' }, `${analysis.conversations - SHOWN_CONVERSATIONS} more conversations are not listed.`)
      : null,
  );
}

export function analysisView(analysis: DatasetAnalysis, title = 'Task analysis'): HTMLElement {
  const questions = (Object.keys(QUESTION_LABELS) as QuestionType[]).map((type) =>
    el(
      'li',
      { 'data-testid': 'question-type', 'data-type': type, 'data-share': analysis.questionTypes[type].share },
      `${QUESTION_LABELS[type]}: `,
      el('strong', {}, percent(analysis.questionTypes[type].share)),
      ` (${analysis.questionTypes[type].count})`,
    ),
  );
  const rag = analysis.ragIndices;
  return el(
    'section',
    { class: 'analysis', 'data-testid': 'analysis-report', 'data-conversations': analysis.conversations },
    el('h3', {}, title),
    recommendationView(analysis),
    distributionView(analysis),
    el(
      'ul',
      { class: 'stats' },
      el(
        'li',
        { 'data-testid': 'avg-response-chars', 'data-value': analysis.avgResponseChars },
        'Average response: ',
        el('strong', {}, `${analysis.avgResponseChars.toFixed(0)} characters`),
      ),
      el('li', { class: 'muted' }, 'User questions:'),
      ...questions,
    ),
    el(
      'p',
      { 'data-testid': 'rag-conversations', 'data-count': rag.length },
      el('strong', {}, plural(rag.length, 'RAG conversation')),
      ' (primary task rag_enhanced)',
      rag.length ? `: rows ${rag.map((index) => index + 1).join(', ')}` : '',
    ),
    conversationsView(analysis),
    el('p', { class: 'muted small' }, "Rows are numbered from 1 in the order of the file's valid lines."),
  );
}

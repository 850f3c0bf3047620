/**
 * A progressive run in the training step: phase by phase progress, then what each phase did and
 * the forgetting report (the phase-1 eval loss after phase 1 against after phase 2).
 */
import type { ProgressiveEvent, ProgressiveOutcome, RunStage } from '../../app/api';
import type { App } from '../app';
import { el, errorMessage, formatLoss, Notice } from '../dom';

const STAGE_LABELS: Record<RunStage, string> = {
  'eval-before': 'measuring its eval loss before training…',
  training: 'training…',
  'eval-after': 'measuring its eval loss after training…',
};

function lossCell(value: number | null, testId: string): HTMLElement {
  return el('td', { class: 'num', 'data-testid': testId, ...(value === null ? {} : { 'data-value': value }) }, formatLoss(value));
}

function outcomeView(outcome: ProgressiveOutcome): HTMLElement {
  const phases = el(
    'table',
    { class: 'table', 'data-testid': 'progressive-phases' },
    el(
      'thead',
      {},
      el('tr', {}, ...['Phase', 'Tasks', 'Rows', 'Steps', 'Its eval loss before', 'Its eval loss after'].map((h) => el('th', {}, h))),
    ),
    el(
      'tbody',
      {},
      ...outcome.phases.map((p) =>
        el(
          'tr',
          { 'data-testid': 'progressive-phase', 'data-phase': p.phase },
          el('td', {}, String(p.phase)),
          el('td', {}, p.tasks.join(', ')),
          el('td', { class: 'num' }, String(p.rows)),
          el('td', { class: 'num' }, String(p.steps)),
          lossCell(p.evalLossBefore, 'phase-eval-before'),
          lossCell(p.evalLossAfter, 'phase-eval-after'),
        ),
      ),
    ),
  );
  const f = outcome.forgetting;
  const forgetting = f
    ? el(
        'div',
        { class: 'forgetting', 'data-testid': 'forgetting-report', 'data-forgetting': f.forgetting },
        el('h3', {}, 'Forgetting report'),
        el(
          'table',
          { class: 'table' },
          el(
            'tbody',
            {},
            el('tr', {}, el('th', {}, 'Phase-1 eval loss after phase 1'), lossCell(f.phase1EvalLossAfterPhase1, 'forgetting-after-phase1')),
            el('tr', {}, el('th', {}, 'Phase-1 eval loss after phase 2'), lossCell(f.phase1EvalLossAfterPhase2, 'forgetting-after-phase2')),
          ),
        ),
        el(
          'p',
          { class: 'small' },
          f.forgetting > 0
            ? `Phase 2 undid part of phase 1: its eval loss rose by ${f.forgetting.toFixed(4)}.`
            : `Phase 2 kept what phase 1 learnt: its eval loss changed by ${f.forgetting.toFixed(4)}.`,
        ),
      )
    : el('p', { class: 'muted' }, 'Phase 2 did not run, so there is no forgetting report.');
  return el('div', {}, phases, forgetting);
}

export class ProgressiveSection {
  readonly element: HTMLElement;
  private readonly notice = new Notice('progressive-error');
  private readonly status = el('p', { class: 'status-line', role: 'status', 'data-testid': 'progressive-status' });
  private readonly bar = el('progress', { class: 'progress', max: 1, value: 0 });
  private readonly pauseButton = el('button', { type: 'button', class: 'secondary', 'data-testid': 'progressive-pause' }, 'Pause');
  private readonly stopButton = el('button', { type: 'button', class: 'secondary danger', 'data-testid': 'progressive-stop' }, 'Stop');
  private readonly result = el('div');
  /** The run this section trains, from its first event until it ends; null otherwise. */
  #trainingRunId: string | null = null;

  constructor(private readonly app: App) {
    this.pauseButton.addEventListener('click', () => void this.app.engine.pause());
    this.stopButton.addEventListener('click', () => void this.app.engine.stop());
    this.element = el(
      'section',
      { class: 'progressive', 'data-testid': 'progressive-run', hidden: true },
      el('h3', {}, 'Progressive run'),
      this.status,
      this.bar,
      el('div', { class: 'actions' }, this.pauseButton, this.stopButton),
      this.notice.element,
      this.result,
    );
  }

  async start(name: string): Promise<void> {
    const { trainDatasetId, settings, preset } = this.app.state;
    if (!trainDatasetId) return;
    this.element.hidden = false;
    this.element.dataset.state = 'running';
    this.notice.clear();
    this.result.replaceChildren();
    this.status.textContent = 'Splitting the data into phases…';
    this.pauseButton.hidden = false;
    this.stopButton.hidden = false;
    this.app.update({ training: true });
    try {
      const request = { datasetId: trainDatasetId, settings, filter: preset?.filter ?? null, name: name || undefined };
      const outcome = await this.app.engine.startProgressiveRun(request, (event) => this.onEvent(event));
      this.status.textContent =
        outcome.status === 'completed'
          ? 'Both phases finished; the final adapter is saved.'
          : outcome.status === 'paused'
            ? `Paused at a checkpoint${outcome.error ? ` (${outcome.error})` : ''}; ` +
              'resume it from the unfinished runs in the training step.'
            : 'Stopped; the adapter trained so far is saved.';
      this.result.replaceChildren(outcomeView(outcome));
      this.element.dataset.state = outcome.status;
    } catch (error) {
      this.status.textContent = '';
      this.notice.show(errorMessage(error));
      this.element.dataset.state = 'failed';
    } finally {
      this.#trainingRunId = null;
      this.pauseButton.hidden = true;
      this.stopButton.hidden = true;
      this.app.update({ training: false });
      await Promise.all([this.app.refreshRuns(), this.app.refreshAdapters()]);
    }
  }

  /** The progressive run this tab trains now, so that the unfinished runs do not list it as another tab's. */
  get trainingRunId(): string | null {
    return this.#trainingRunId;
  }

  private onEvent(event: ProgressiveEvent): void {
    this.#trainingRunId = event.type === 'started' ? event.run.id : event.runId;
    if (event.type === 'phase') {
      if (event.stage) this.status.textContent = `Phase ${event.phase} of 2: ${STAGE_LABELS[event.stage]}`;
      return;
    }
    if (event.type !== 'progress') return;
    const p = event.progress;
    this.bar.value = p.totalSteps ? p.step / p.totalSteps : 0;
    this.status.textContent = `Phase ${event.phase} of 2: step ${p.step} of ${p.totalSteps}, train loss ${formatLoss(p.loss)}`;
  }
}

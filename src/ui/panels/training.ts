import type { HistoryPoint } from '../../storage/db';
import type { RunEvent, RunOutcome, RunRecord, TrainProgress } from '../../app/api';
import { qualityFilter, type App, type Panel } from '../app';
import { el, errorMessage, formatDuration, formatLoss, Notice } from '../dom';
import { LossChart } from '../views/loss-chart';
import { ProgressiveSection } from '../views/progressive-run';
import { ReportButtons } from '../views/report';
import { UnfinishedRuns } from '../views/unfinished-runs';

type Status = 'idle' | 'preparing' | 'running' | 'pausing' | 'stopping' | 'paused' | 'completed' | 'stopped' | 'failed';

const STATUS_LABELS: Record<Status, string> = {
  idle: 'No run',
  preparing: 'Preparing',
  running: 'Training',
  pausing: 'Pausing after this step…',
  stopping: 'Stopping after this step…',
  paused: 'Paused',
  completed: 'Completed',
  stopped: 'Stopped',
  failed: 'Failed',
};

export class TrainingPanel implements Panel {
  readonly element: HTMLElement;
  private readonly notice = new Notice('training-error');
  private readonly title = el('h2', {}, 'Training');
  private readonly pill = el('span', { class: 'pill', 'data-testid': 'run-status' });
  private readonly message = el('p', { class: 'status-line', 'data-testid': 'run-message', role: 'status' });
  private readonly bar = el('progress', { class: 'progress', max: 1, value: 0 });
  private readonly chart = new LossChart();
  private readonly stats = new Map<string, HTMLElement>();
  private readonly pauseButton = el('button', { type: 'button', class: 'secondary', 'data-testid': 'pause' }, 'Pause');
  private readonly resumeButton = el('button', { type: 'button', class: 'secondary', 'data-testid': 'resume' }, 'Resume');
  private readonly stopButton = el('button', { type: 'button', class: 'secondary danger', 'data-testid': 'stop' }, 'Stop');
  private readonly done = el('div', { class: 'done', 'data-testid': 'run-done', hidden: true });
  private readonly idle = el(
    'p',
    { class: 'empty-state' },
    'No run in this session yet. Choose the settings and start one in step 3, or resume an unfinished run below.',
  );
  private readonly view = el('div', { hidden: true });
  private status: Status = 'idle';
  private run: RunRecord | null = null;
  private progress: TrainProgress | null = null;
  /** When the last progress arrived, to let elapsed time run on between steps. */
  private progressAt = 0;
  private timer: number | undefined;
  private readonly progressive: ProgressiveSection;
  private readonly report: ReportButtons;
  private readonly unfinished: UnfinishedRuns;

  constructor(private readonly app: App) {
    this.progressive = new ProgressiveSection(app);
    this.report = new ReportButtons(app);
    this.unfinished = new UnfinishedRuns(
      app,
      () => this.progressive.trainingRunId ?? this.run?.id ?? null,
      (runId) => void this.resume(runId),
    );
    const stat = (key: string, label: string) => {
      const value = el('dd', { 'data-testid': key }, '—');
      this.stats.set(key, value);
      return el('div', { class: 'stat' }, el('dt', {}, label), value);
    };
    this.pauseButton.addEventListener('click', () => void this.pause());
    this.stopButton.addEventListener('click', () => void this.stop());
    this.resumeButton.addEventListener('click', () => this.run && void this.resume(this.run.id));
    this.element = el(
      'section',
      { class: 'panel' },
      el('header', { class: 'panel-title row' }, this.title, this.pill),
      this.message,
      this.notice.element,
      this.idle,
      this.view,
      this.done,
      this.progressive.element,
      this.unfinished.element,
    );
    this.view.append(
      this.bar,
      el(
        'dl',
        { class: 'stats-grid' },
        stat('run-step', 'Step'),
        stat('run-epoch', 'Epoch'),
        stat('train-loss', 'Train loss'),
        stat('eval-loss', 'Eval loss'),
        stat('tokens-per-second', 'Tokens / s'),
        stat('elapsed', 'Elapsed'),
        stat('eta', 'Remaining'),
        stat('run-checkpoint', 'Last checkpoint'),
      ),
      this.chart.element,
      el('div', { class: 'actions' }, this.pauseButton, this.resumeButton, this.stopButton),
    );
    this.setStatus('idle');
    app.handle('startRun', (name) => this.start(name));
    app.handle('startProgressiveRun', (name) => void this.startProgressive(name));
    app.watch(
      (s) => [s.training],
      (training) => (this.resumeButton.disabled = training),
    );
  }

  /** The stepper's line: where the run stands. */
  private summary(): string {
    const step = this.progress?.step ?? this.run?.step ?? 0;
    switch (this.status) {
      case 'idle':
        return 'Not started';
      case 'completed':
        return `${step}/${step} done`;
      case 'paused':
      case 'stopped':
        return `${this.status} at ${step}`;
      case 'failed':
        return 'Failed';
      default:
        return `step ${step}/${this.run?.totalSteps ?? '?'}`;
    }
  }

  private async start(name: string): Promise<RunOutcome | null> {
    const { trainDatasetId, evalDatasetId, settings } = this.app.state;
    if (!trainDatasetId) return null;
    const filter = qualityFilter(this.app.state);
    return this.drive(`Starting…`, (onEvent) =>
      this.app.engine.startRun({ datasetId: trainDatasetId, evalDatasetId, settings, name: name || undefined, filter }, onEvent),
    );
  }

  private async startProgressive(name: string): Promise<void> {
    this.app.goTo('training');
    this.idle.hidden = true;
    await this.progressive.start(name);
  }

  private async resume(runId: string): Promise<void> {
    await this.drive('Restoring the latest checkpoint…', (onEvent) => this.app.engine.resumeRun(runId, onEvent));
  }

  /** Runs one start or resume to its end, showing its events as they come; null when it failed. */
  private async drive(message: string, call: (onEvent: (event: RunEvent) => void) => Promise<RunOutcome>): Promise<RunOutcome | null> {
    this.app.goTo('training');
    this.notice.clear();
    this.done.hidden = true;
    this.progress = null;
    this.element.removeAttribute('data-first-step');
    this.element.removeAttribute('data-pause-reason');
    this.message.textContent = message;
    this.setStatus('preparing');
    this.app.update({ training: true });
    this.timer = window.setInterval(() => this.tick(), 1000);
    let outcome: RunOutcome | null = null;
    try {
      outcome = await call((event) => this.onEvent(event));
      this.finish(outcome);
    } catch (error) {
      this.setStatus('failed');
      this.message.textContent = '';
      this.notice.show(errorMessage(error));
    } finally {
      window.clearInterval(this.timer);
      this.app.update({ training: false });
      await Promise.all([this.app.refreshRuns(), this.app.refreshAdapters()]);
    }
    return outcome;
  }

  private onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'phase':
        this.message.textContent = event.message;
        break;
      case 'started': {
        this.run = event.run;
        this.title.textContent = event.run.name;
        this.chart.reset(event.run.totalSteps, event.run.history);
        const checkpoint = event.run.lastCheckpointStep;
        this.element.dataset.resumedFrom = String(checkpoint ?? 0);
        this.message.textContent = checkpoint
          ? `Resumed from the checkpoint at step ${checkpoint} of ${event.run.totalSteps}.`
          : `Training ${event.run.totalSteps} steps. The first step compiles the GPU kernels.`;
        this.setStep(event.run.step, event.run.totalSteps);
        if (checkpoint) this.setStat('run-checkpoint', `step ${checkpoint}`, checkpoint);
        const lastEval = event.run.history.filter((p) => p.evalLoss !== undefined).at(-1);
        if (lastEval) this.setStat('eval-loss', formatLoss(lastEval.evalLoss));
        this.setStatus('running');
        // The run on show leaves the list of unfinished ones.
        this.unfinished.render();
        break;
      }
      case 'progress': {
        const p = event.progress;
        this.progress = p;
        this.progressAt = performance.now();
        this.element.dataset.firstStep ??= String(p.step);
        const point: HistoryPoint = { step: p.step, epoch: p.epoch, loss: p.loss, evalLoss: p.evalLoss, lr: p.lr, elapsedMs: p.elapsedMs };
        this.chart.add(point);
        this.setStep(p.step, p.totalSteps);
        this.setStat('run-epoch', `${p.epoch.toFixed(2)} of ${this.run?.settings.training.epochs ?? '?'}`);
        this.setStat('train-loss', formatLoss(p.loss), p.loss);
        if (p.evalLoss !== undefined) this.setStat('eval-loss', formatLoss(p.evalLoss), p.evalLoss);
        this.setStat('tokens-per-second', p.tokensPerSecond.toFixed(p.tokensPerSecond < 100 ? 1 : 0));
        this.tick();
        if (this.status === 'running') this.message.textContent = `Step ${p.step} of ${p.totalSteps} done, lr ${p.lr.toExponential(2)}.`;
        break;
      }
      case 'checkpoint':
        this.setStat('run-checkpoint', `step ${event.step}`, event.step);
        break;
      case 'warning':
        this.notice.show(event.message);
        break;
    }
  }

  private finish(outcome: RunOutcome): void {
    this.setStatus(outcome.status);
    this.setStep(outcome.step, outcome.totalSteps);
    if (outcome.finalEvalLoss !== null) this.setStat('eval-loss', formatLoss(outcome.finalEvalLoss), outcome.finalEvalLoss);
    if (outcome.error) {
      this.notice.show(
        outcome.pauseReason === 'storage-full'
          ? `Paused at step ${outcome.step}, the last checkpoint saved. ${outcome.error}`
          : `Paused because the GPU device was lost: ${outcome.error}`,
      );
      this.element.dataset.pauseReason = outcome.pauseReason ?? '';
      this.message.textContent = '';
      return;
    }
    if (outcome.status === 'paused') {
      this.message.textContent = [
        `Paused at step ${outcome.step}; the checkpoint is saved,`,
        'so this run can be resumed later, even after a reload.',
      ].join(' ');
      return;
    }
    this.message.textContent =
      outcome.status === 'completed' ? `Finished ${outcome.step} steps.` : `Stopped at step ${outcome.step} of ${outcome.totalSteps}.`;
    this.done.replaceChildren(
      el(
        'p',
        {},
        'The adapter is saved in this browser.',
        outcome.finalEvalLoss === null ? null : el('strong', {}, ` Final eval loss ${formatLoss(outcome.finalEvalLoss)}.`),
      ),
      el(
        'div',
        { class: 'inline' },
        el(
          'button',
          { type: 'button', 'data-testid': 'to-evaluate', onclick: () => this.app.goTo('evaluate') },
          'Evaluate before vs after',
        ),
        el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'to-compare', onclick: () => this.app.goTo('compare') },
          'Compare outputs',
        ),
        el('button', { type: 'button', class: 'secondary', onclick: () => this.app.goTo('adapters') }, 'See adapters'),
      ),
      this.report.element,
    );
    this.done.hidden = false;
  }

  private async pause(): Promise<void> {
    this.setStatus('pausing');
    await this.app.engine.pause();
  }

  private async stop(): Promise<void> {
    if (!confirm('Stop this run? The adapter trained so far is saved, but the run cannot be continued.')) return;
    this.setStatus('stopping');
    await this.app.engine.stop();
  }

  private tick(): void {
    const p = this.progress;
    if (!p) return;
    const since =
      this.status === 'running' || this.status === 'pausing' || this.status === 'stopping' ? performance.now() - this.progressAt : 0;
    this.setStat('elapsed', formatDuration(p.elapsedMs + since));
    this.setStat('eta', p.step >= p.totalSteps ? '—' : formatDuration(Math.max(0, p.etaMs - since)));
  }

  private setStep(step: number, total: number): void {
    this.setStat('run-step', `${step} / ${total}`, step);
    this.bar.value = total ? step / total : 0;
    this.app.note('training', this.summary());
  }

  private setStat(key: string, text: string, value?: number): void {
    const node = this.stats.get(key)!;
    node.textContent = text;
    if (value !== undefined) node.dataset.value = String(value);
  }

  private setStatus(status: Status): void {
    this.status = status;
    this.pill.textContent = STATUS_LABELS[status];
    this.pill.dataset.state = status;
    this.element.dataset.status = status;
    this.idle.hidden = status !== 'idle';
    this.view.hidden = status === 'idle';
    const active = status === 'running' || status === 'preparing';
    this.pauseButton.disabled = status !== 'running';
    this.stopButton.disabled = !active && status !== 'pausing';
    this.resumeButton.hidden = status !== 'paused';
    this.app.note('training', this.summary());
  }
}

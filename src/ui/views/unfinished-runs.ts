/**
 * The training step's list of unfinished runs: those a reload, a closed tab, a lost GPU or a full
 * disk left behind, each resumable from its last checkpoint, and those another tab is training
 * right now (their run's Web Lock is held there), shown with that tab's live progress and not
 * resumable until that tab lets go; closing it makes the run resumable here.
 */
import { heldLocks, RUN_LOCK_PREFIX, whenFree } from '../../app/locks';
import { RUN_CHANNEL, type RunNews } from '../../app/run-presence';
import type { RunRecord } from '../../app/api';
import type { App } from '../app';
import { el, formatLoss } from '../dom';

type Progress = Extract<RunNews, { type: 'progress' }>;

/** A run left unfinished by a reload, a closed tab or a lost GPU, and resumable from its checkpoint. */
function resumable(run: RunRecord): boolean {
  return (run.status === 'running' || run.status === 'paused') && run.lastCheckpointStep !== null;
}

export class UnfinishedRuns {
  readonly element = el('div', { class: 'unfinished', 'data-testid': 'unfinished-runs' });
  /** Runs other tabs train now, with their latest progress (null until one arrives). */
  readonly #elsewhere = new Map<string, Progress | null>();
  /** Runs whose lock is awaited (`whenFree`), so each is watched once. */
  readonly #watched = new Set<string>();

  /** `ownRun` is the run this tab shows in its training step; `resume` resumes a run here. */
  constructor(
    private readonly app: App,
    private readonly ownRun: () => string | null,
    private readonly resume: (runId: string) => void,
  ) {
    if (typeof BroadcastChannel !== 'undefined') {
      new BroadcastChannel(RUN_CHANNEL).onmessage = (event: MessageEvent<RunNews>) => this.#news(event.data);
    }
    app.watch(
      (s) => [s.runs, s.training, s.model?.name],
      () => {
        this.render();
        void this.#findElsewhere();
      },
    );
  }

  render(): void {
    const state = this.app.state;
    const own = state.training ? this.ownRun() : null;
    const candidates = state.runs.filter((r) => r.id !== own && (resumable(r) || this.#elsewhere.has(r.id)));
    this.element.replaceChildren();
    if (candidates.length === 0) return;
    this.element.append(el('h3', {}, 'Unfinished runs'));
    for (const run of candidates) {
      const modelReady = state.model?.name === run.model.id;
      const elsewhere = this.#elsewhere.has(run.id);
      const news = this.#elsewhere.get(run.id) ?? null;
      const button = el(
        'button',
        {
          type: 'button',
          class: 'secondary',
          'data-testid': 'resume-run',
          disabled: state.training || !modelReady || elsewhere,
          onclick: () => this.resume(run.id),
        },
        elsewhere ? 'Training in another tab' : `Resume from step ${run.lastCheckpointStep}`,
      );
      const where = elsewhere
        ? el(
            'p',
            { class: 'small', 'data-testid': 'run-elsewhere', 'data-step': news?.step ?? run.step },
            news
              ? `Training in another tab: step ${news.step} of ${news.totalSteps}, train loss ${formatLoss(news.loss)}.`
              : 'Training in another tab.',
            ' Close that tab to resume the run here.',
          )
        : el(
            'span',
            { class: 'muted' },
            ` · ${run.status === 'paused' ? 'paused' : 'interrupted'} at step ${run.step} of ${run.totalSteps}`,
          );
      this.element.append(
        el(
          'div',
          { class: 'unfinished-run', 'data-run-id': run.id, 'data-elsewhere': String(elsewhere) },
          el(
            'div',
            {},
            el('strong', {}, run.name),
            where,
            run.error && !elsewhere ? el('p', { class: 'muted small' }, run.error) : null,
            modelReady || elsewhere ? null : el('p', { class: 'muted small' }, `Load ${run.model.id} in step 1 to resume it.`),
          ),
          button,
        ),
      );
    }
  }

  /** Runs whose lock another tab holds; each is watched until that tab lets go. */
  async #findElsewhere(): Promise<void> {
    const held = await heldLocks(RUN_LOCK_PREFIX);
    const own = this.app.state.training ? this.ownRun() : null;
    let changed = false;
    for (const runId of held) {
      if (runId === own || this.#watched.has(runId)) continue;
      if (!this.#elsewhere.has(runId)) this.#elsewhere.set(runId, null);
      this.#watched.add(runId);
      changed = true;
      void whenFree(RUN_LOCK_PREFIX + runId).then(() => this.#released(runId));
    }
    if (changed) this.render();
  }

  async #released(runId: string): Promise<void> {
    this.#watched.delete(runId);
    this.#elsewhere.delete(runId);
    await this.app.refreshRuns();
    this.render();
  }

  #news(news: RunNews): void {
    // This tab's own worker posts on the channel too: its runs are not another tab's.
    if (this.app.state.training && news.runId === this.ownRun()) return;
    if (news.type === 'ended') {
      if (this.#elsewhere.has(news.runId)) void this.#released(news.runId);
      return;
    }
    if (news.type !== 'progress') return;
    const known = this.app.state.runs.some((r) => r.id === news.runId);
    this.#elsewhere.set(news.runId, news);
    // A run started in another tab after this one loaded: its record is read once. Either way its lock is watched.
    if (!known) void this.app.refreshRuns().then(() => this.#findElsewhere());
    else {
      this.render();
      void this.#findElsewhere();
    }
  }
}

/**
 * The one-click demo on the first screen: the stories260K model and the Zog stories, shipped with
 * the site (public/demo/) and loaded from its own origin by relative URLs, trained with settings
 * small enough for a CPU, then the base and the adapted continuation side by side.
 *
 * The settings are the README's Zog recipe (r 8, alpha 16 on q/k/v, lr 5e-3, batch 4) with 4
 * epochs instead of 8 and 32 tokens per story instead of all ~200: 24 steps of 4 × 32 tokens, a
 * tenth of the recipe's work, and the greedy continuation of the prompt still turns from "girl
 * named Lily" into "dragon named Zog" (measured with the CLI: eval loss 1.69 → 0.04 on the first
 * 32 tokens of the eval stories).
 */
import type { App } from '../app';
import { el, errorMessage, Notice } from '../dom';
import { validateTrainSettings } from '../../train/settings';
import { useDataset } from './share';

export const DEMO_PROMPT = 'Once upon a time, there was a little';
export const DEMO_RUN_NAME = 'Zog demo';

export const DEMO_SETTINGS = validateTrainSettings({
  lora: { r: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj'] },
  lr: 5e-3,
  epochs: 4,
  batchSize: 4,
  maxLength: 32,
  evalEvery: 6,
});

/** The demo's files, relative to the page, so the site works under any path. */
export function demoSources(): { model: string; train: string; eval: string } {
  const at = (path: string) => new URL(path, document.baseURI).href;
  return {
    model: at('demo/stories260K/'),
    train: `url:${at('demo/zog/zog_stories_train.jsonl')}`,
    eval: `url:${at('demo/zog/zog_stories_eval.jsonl')}`,
  };
}

export class DemoCard {
  readonly element: HTMLElement;
  private readonly button = el('button', { type: 'button', class: 'primary', 'data-testid': 'try-demo' }, 'Try the demo');
  private readonly status = el('p', { class: 'status-line', 'data-testid': 'demo-status', role: 'status' });
  private readonly notice = new Notice('demo-error');
  private busy = false;

  constructor(private readonly app: App) {
    this.button.addEventListener('click', () => void this.run());
    this.element = el(
      'div',
      { class: 'demo-card', 'data-testid': 'demo-card' },
      el(
        'div',
        {},
        el('strong', {}, 'New here? '),
        'Teach a tiny story model (stories260K, 1 MB, shipped with this page) about Zog the dragon: 24 training steps on 24 ' +
          'short stories, then its continuation of "Once upon a time, there was a little" before and after. Nothing is downloaded ' +
          'from anywhere else.',
      ),
      el('div', { class: 'inline' }, this.button, this.status),
      this.notice.element,
    );
    app.watch(
      (s) => [s.training, s.device?.state ?? null],
      () => this.render(),
    );
  }

  private render(): void {
    const { training, device } = this.app.state;
    this.button.disabled = this.busy || training || (device !== null && device.state !== 'ready');
  }

  private async run(): Promise<void> {
    this.busy = true;
    this.notice.clear();
    this.render();
    try {
      const sources = demoSources();
      this.status.textContent = 'Loading the demo model…';
      if (!(await this.app.act('loadModel', { kind: 'url', url: sources.model }))) throw new Error('the model did not load (see above).');
      for (const [role, source] of [
        ['train', sources.train],
        ['eval', sources.eval],
      ] as const) {
        this.status.textContent = `Reading the ${role === 'train' ? 'training' : 'eval'} stories…`;
        // A dataset stored by an earlier demo is chosen again rather than imported twice.
        if (!(await useDataset(this.app, source, role))) throw new Error('the stories could not be read (see step 2).');
      }
      this.app.act('applySettings', DEMO_SETTINGS, null);
      this.status.textContent = 'Training…';
      const outcome = await this.app.act('startRun', DEMO_RUN_NAME);
      if (outcome?.status !== 'completed') {
        this.status.textContent = outcome ? `The run ${outcome.status}.` : 'Training failed (see step 4).';
        return;
      }
      this.status.textContent = 'Comparing the base model and the adapter…';
      this.app.goTo('compare');
      await this.app.act('compare', DEMO_PROMPT);
      this.status.textContent = 'Done: the adapted model now tells stories about Zog.';
    } catch (error) {
      this.status.textContent = '';
      this.notice.show(`The demo stopped: ${errorMessage(error)}`);
    } finally {
      this.busy = false;
      this.render();
    }
  }
}

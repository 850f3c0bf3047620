/**
 * Share links on the page (the format is src/site/share-link.ts). Opening one shows what it will
 * download, names and sizes, and waits for a confirmation before anything is fetched; confirmed, it
 * loads the model, stores the datasets, fills the settings and leaves the start button one click
 * away. "Copy share link" builds a link from the current setup and says which parts cannot travel
 * (a local model folder, datasets imported from files).
 */
import type { PlannedDownload } from '../../app/api';
import { decodeShareLink, encodeShareLink, isShareFragment, type SharedSetup } from '../../site/share-link';
import type { App, AppState } from '../app';
import { el, errorMessage, formatBytes, Notice, plural } from '../dom';

/** Chooses the dataset stored from `source` for the role, or downloads and stores it; false when that failed. */
export async function useDataset(app: App, source: string, role: 'train' | 'eval'): Promise<boolean> {
  const stored = app.state.datasets.find((d) => d.source === source);
  if (!stored) return (await app.act('importDatasetFrom', source, role)) !== null;
  app.update(role === 'train' ? { trainDatasetId: stored.id } : { evalDatasetId: stored.id });
  return true;
}

function describe(item: PlannedDownload): HTMLElement {
  const known = item.files.every((f) => f.size !== null);
  const total = item.files.reduce((sum, f) => sum + (f.size ?? 0), 0);
  const what = item.what === 'model' ? 'Model' : 'Dataset';
  const detail = item.problem
    ? el('span', { class: 'bad' }, ` cannot be listed: ${item.problem}`)
    : item.cached
      ? el('span', { class: 'muted' }, ' is in this browser already: nothing to download.')
      : el(
          'span',
          {},
          `: ${item.files.map((f) => `${f.name} (${f.size === null ? 'size unknown' : formatBytes(f.size)})`).join(', ')}`,
          el('strong', {}, ` — ${known ? '' : 'at least '}${formatBytes(total)} in all.`),
        );
  return el(
    'li',
    { 'data-testid': 'share-item', 'data-what': item.what, 'data-bytes': item.cached ? 0 : total },
    el('strong', {}, `${what} `),
    el('code', {}, item.label),
    detail,
  );
}

export class ShareLinkDialog {
  readonly element = el('section', {
    class: 'share-dialog',
    role: 'dialog',
    'aria-label': 'Shared setup',
    'data-testid': 'share-confirm',
    hidden: true,
  });
  private readonly notice = new Notice('share-error');

  constructor(private readonly app: App) {
    window.addEventListener('hashchange', () => void this.open(location.hash));
  }

  /** Shows what a share fragment asks for; fragments that are not share links are left alone. */
  async open(hash: string): Promise<void> {
    if (!isShareFragment(hash)) return;
    this.element.hidden = false;
    this.element.replaceChildren(el('h2', {}, 'A shared fine-tuning setup'), this.notice.element);
    this.notice.clear();
    let setup: SharedSetup;
    try {
      setup = decodeShareLink(hash, location.origin);
    } catch (error) {
      this.notice.show(errorMessage(error));
      this.element.append(this.closeButton('Close'));
      return;
    }
    const status = el('p', { class: 'status-line', role: 'status' }, 'Asking the servers for the file sizes (nothing is downloaded yet)…');
    this.element.append(status);
    const datasets = [setup.train, setup.eval].filter((d): d is string => d !== null);
    const plan = await this.app.engine.planDownloads({ model: setup.model, datasets });
    const confirm = el('button', { type: 'button', class: 'primary', 'data-testid': 'share-accept' }, 'Download and set up');
    confirm.addEventListener('click', () => void this.apply(setup, status, confirm));
    status.textContent = plan.length
      ? 'This link sets up a run. Confirm to download:'
      : 'This link holds settings only; confirm to fill them in.';
    this.element.append(
      el('ul', { class: 'share-items' }, ...plan.map(describe)),
      el('p', { class: 'muted small' }, settingsLine(setup)),
      el('div', { class: 'actions' }, this.closeButton('Cancel'), confirm),
    );
  }

  private closeButton(label: string): HTMLButtonElement {
    return el('button', { type: 'button', class: 'secondary', 'data-testid': 'share-cancel', onclick: () => this.close() }, label);
  }

  private close(): void {
    this.element.hidden = true;
    history.replaceState(null, '', `${location.pathname}${location.search}`);
  }

  private async apply(setup: SharedSetup, status: HTMLElement, confirm: HTMLButtonElement): Promise<void> {
    confirm.disabled = true;
    this.notice.clear();
    try {
      if (setup.model) {
        status.textContent = 'Loading the model (its progress shows in step 1)…';
        if (!(await this.app.act('loadModel', setup.model))) throw new Error('the model did not load; step 1 says why');
      }
      for (const [role, source] of [
        ['train', setup.train],
        ['eval', setup.eval],
      ] as const) {
        if (!source) continue;
        status.textContent = `Downloading the ${role === 'train' ? 'training' : 'eval'} data…`;
        if (!(await useDataset(this.app, source, role))) throw new Error('a dataset could not be read; step 2 says why');
      }
      this.app.act('applySettings', setup.settings, setup.preset);
      this.close();
      this.app.goTo('settings');
    } catch (error) {
      status.textContent = '';
      this.notice.show(`The setup is incomplete: ${errorMessage(error)}.`);
      confirm.disabled = false;
    }
  }
}

function settingsLine(setup: SharedSetup): string {
  const s = setup.settings;
  const preset = setup.preset ? `preset ${setup.preset.id}, ` : '';
  return (
    `Settings: ${preset}LoRA r ${s.lora.r}, alpha ${s.lora.alpha} on ${s.lora.targets.join(', ')}; ` +
    `lr ${s.lr}, ${plural(s.epochs, 'epoch')}, ` +
    `batch ${s.batchSize} × ${s.gradAccum}, max length ${s.maxLength}. Training starts only when you press Start training.`
  );
}

/** The current setup as a share link, and the parts of it a link cannot carry. */
export function shareableSetup(state: AppState): { setup: SharedSetup; unshareable: string[] } {
  const unshareable: string[] = [];
  const { model } = state;
  let ref: SharedSetup['model'] = null;
  if (model?.source === 'hub') ref = { kind: 'hub', id: model.name };
  else if (model?.source === 'url' && model.url) ref = { kind: 'url', url: model.url };
  else if (model)
    unshareable.push(`the model "${model.name}" was loaded from a local folder; put it on the Hub or a web server to share it`);
  const dataset = (id: string | null, role: string) => {
    const d = state.datasets.find((x) => x.id === id);
    if (!d) return null;
    if (d.source) return d.source;
    unshareable.push(
      `the ${role} data "${d.name}" was imported from a file (${d.sourceFileName}); import it from a URL or the Hub to share it`,
    );
    return null;
  };
  const preset = state.preset
    ? {
        id: state.preset.id,
        minResponseChars: state.preset.filter.minResponseChars,
        maxResponseChars: state.preset.filter.maxResponseChars,
      }
    : null;
  const setup = {
    model: ref,
    train: dataset(state.trainDatasetId, 'training'),
    eval: dataset(state.evalDatasetId, 'eval'),
    preset,
    settings: state.settings,
  };
  return { setup, unshareable };
}

export class ShareButton {
  readonly element: HTMLElement;
  private readonly link = el('input', {
    type: 'text',
    readonly: true,
    class: 'share-link',
    'data-testid': 'share-link',
    'aria-label': 'Share link',
  });
  private readonly notes = el('ul', { class: 'muted small', 'data-testid': 'share-unshareable' });
  private readonly panel = el('div', { class: 'share-popover', hidden: true });

  constructor(private readonly app: App) {
    const button = el('button', { type: 'button', class: 'secondary', 'data-testid': 'copy-share-link' }, 'Copy share link');
    button.addEventListener('click', () => void this.copy());
    this.panel.append(this.link, this.notes);
    this.element = el('div', { class: 'share' }, button, this.panel);
  }

  private async copy(): Promise<void> {
    const { setup, unshareable } = shareableSetup(this.app.state);
    this.link.value = `${location.origin}${location.pathname}${location.search}${encodeShareLink(setup)}`;
    this.notes.replaceChildren(
      ...(unshareable.length ? unshareable : ['Model, data, preset and settings are all in the link.']).map((text) => el('li', {}, text)),
    );
    this.panel.hidden = false;
    this.link.select();
    // Without clipboard permission (an embedded page, a test) the link is still there to copy by hand.
    await navigator.clipboard?.writeText(this.link.value).catch(() => undefined);
  }
}

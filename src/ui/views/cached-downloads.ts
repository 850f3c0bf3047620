/**
 * The downloads this browser keeps (Hub models, model folder URLs, datasets from a URL or the Hub)
 * with the space each takes, and a way to free it: the message a full disk gives tells people to
 * delete downloaded models, and this is where they do. The loaded model's files stay (its merged
 * exports read them again); the engine refuses that removal too.
 */
import type { CachedDownload } from '../../app/api';
import type { App } from '../app';
import { el, errorMessage, formatBytes, Notice, plural } from '../dom';

const KIND_LABEL: Record<CachedDownload['kind'], string> = {
  hub: 'Hub model',
  url: 'model folder URL',
  dataset: 'dataset',
  interrupted: 'no file finished',
};

export class CachedDownloads {
  readonly element: HTMLDetailsElement;
  private readonly summary = el('summary', {}, 'Downloads kept in this browser');
  private readonly usage = el('p', { class: 'hint', 'data-testid': 'storage-usage' });
  private readonly list = el('ul', { class: 'cached-downloads', 'data-testid': 'cached-downloads' });
  private readonly notice = new Notice('cached-downloads-error');
  private readonly buttons: HTMLButtonElement[] = [];
  private disabled = false;

  constructor(private readonly app: App) {
    this.element = el('details', { class: 'cached', 'data-testid': 'cached-downloads-section' }, this.summary, this.usage, this.list);
    this.element.append(this.notice.element);
    this.element.addEventListener('toggle', () => {
      if (this.element.open) void this.refresh();
    });
    app.watch(
      (s) => [s.model],
      () => void this.refresh(),
    );
  }

  setDisabled(disabled: boolean): void {
    this.disabled = disabled;
    for (const button of this.buttons) button.disabled = disabled || button.dataset.loaded === 'true';
  }

  async refresh(): Promise<void> {
    let downloads: CachedDownload[];
    try {
      downloads = await this.app.engine.cachedDownloads();
      const usage = await this.app.engine.storageUsage();
      this.usage.textContent = usage
        ? `This site stores ${formatBytes(usage.usage)} of the ${formatBytes(usage.quota)} the browser allows it.`
        : '';
    } catch (error) {
      this.notice.show(`Could not list the downloads: ${errorMessage(error)}`);
      return;
    }
    const total = downloads.reduce((sum, d) => sum + d.bytes, 0);
    this.summary.textContent = `Downloads kept in this browser (${plural(downloads.length, 'download')}, ${formatBytes(total)})`;
    this.buttons.length = 0;
    this.list.replaceChildren(
      ...downloads.map((d) => {
        const isLoaded = d.loaded === true;
        const remove = el(
          'button',
          { type: 'button', class: 'link danger', 'data-testid': 'cached-download-remove', onclick: () => void this.remove(d) },
          'Remove',
        );
        remove.dataset.loaded = String(isLoaded);
        remove.disabled = this.disabled || isLoaded;
        if (isLoaded) remove.title = 'The loaded model: load another model to remove its files.';
        this.buttons.push(remove);
        const files = d.kind === 'interrupted' ? '' : ` · ${plural(d.fileCount, 'file')}`;
        return el(
          'li',
          { 'data-testid': 'cached-download', 'data-id': d.id ?? '' },
          el('strong', {}, d.label),
          el('span', { class: 'muted' }, ` · ${KIND_LABEL[d.kind]}${files} · ${formatBytes(d.bytes)}${isLoaded ? ' · loaded' : ''}`),
          remove,
        );
      }),
    );
    if (downloads.length === 0) this.list.append(el('li', { class: 'muted empty' }, 'Nothing downloaded yet.'));
  }

  private async remove(d: CachedDownload): Promise<void> {
    this.notice.clear();
    try {
      await this.app.engine.removeCachedDownload(d.id);
      this.notice.show(`Removed ${d.label} (${formatBytes(d.bytes)} freed).`, 'ok');
    } catch (error) {
      this.notice.show(`Could not remove ${d.label}: ${errorMessage(error)}`);
    }
    await this.refresh();
  }
}

/**
 * The data step's field for datasets that are not files: an https URL or a Hugging Face dataset
 * reference. It downloads (or reads from the cache) through the engine and shows the progress; the
 * data step previews and stores what it gets, as for a file.
 */
import type { DatasetPreview, HubProgress } from '../../app/api';
import type { App } from '../app';
import { el } from '../dom';

export type Role = 'train' | 'eval';

export class DatasetSourceField {
  readonly element: HTMLElement;
  private readonly input = el('input', {
    type: 'text',
    spellcheck: false,
    placeholder: 'https://…/data.jsonl, owner/name, owner/name:test or owner/name/file.parquet',
    'data-testid': 'dataset-source',
    'aria-label': 'Dataset URL or Hugging Face dataset',
  });
  private readonly status = el('p', { class: 'status-line', 'data-testid': 'dataset-source-status', role: 'status' });

  constructor(
    private readonly app: App,
    onFetch: (source: string, role: Role) => void,
  ) {
    const button = (role: Role, label: string) =>
      el(
        'button',
        {
          type: 'button',
          class: 'secondary',
          'data-testid': `dataset-source-${role}`,
          onclick: () => onFetch(this.input.value.trim(), role),
        },
        label,
      );
    this.element = el(
      'div',
      { class: 'dataset-source' },
      el('label', { class: 'field-label' }, 'Or from a URL or the Hugging Face Hub (JSONL, JSON or Parquet)'),
      el('div', { class: 'inline' }, this.input, button('train', 'Fetch as training data'), button('eval', 'Fetch as eval data')),
      el('p', { class: 'hint' }, 'Downloaded once and kept in this browser; the next fetch of the same source reads it from disk.'),
      this.status,
    );
  }

  /** The source's preview; the status line shows each file as it arrives, and clears when it fails. */
  async fetch(source: string): Promise<DatasetPreview> {
    this.status.textContent = `Fetching ${source}…`;
    try {
      return await this.app.engine.importDatasetFrom(source, (p) => this.progress(p));
    } catch (error) {
      this.status.textContent = '';
      throw error;
    }
  }

  private progress(p: HubProgress): void {
    const where = p.fromCache ? 'From cache' : 'Downloaded';
    const bytes = p.loaded.toLocaleString('en-US');
    this.status.textContent = `${where} ${p.file}: ${bytes} bytes (file ${p.filesDone + 1} of ${p.filesTotal})`;
  }
}

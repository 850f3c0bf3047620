/**
 * The progress of a dataset file being read (the data step): a bar over the bytes read, the lines,
 * rows and refused lines so far, and a Cancel that stops the import and leaves nothing stored.
 */
import type { ImportProgress } from '../../app/api';
import { el, formatBytes } from '../dom';

export class ImportProgressView {
  readonly element: HTMLElement;
  private readonly bar = el('progress', { class: 'progress', max: 1, value: 0 });
  private readonly text = el('span', { class: 'muted' });

  constructor(onCancel: () => void) {
    const cancel = el(
      'button',
      { type: 'button', class: 'secondary', 'data-testid': 'import-progress-cancel', onclick: onCancel },
      'Cancel import',
    );
    this.element = el('div', { class: 'import-progress', 'data-testid': 'import-progress', hidden: true }, this.bar, this.text, cancel);
  }

  start(fileName: string, totalBytes: number): void {
    this.element.hidden = false;
    this.show(fileName, { bytesRead: 0, totalBytes, lines: 0, rows: 0, invalid: 0 });
  }

  show(fileName: string, p: ImportProgress): void {
    this.bar.max = Math.max(1, p.totalBytes);
    this.bar.value = p.bytesRead;
    this.element.dataset.bytes = String(p.bytesRead);
    this.element.dataset.total = String(p.totalBytes);
    this.element.dataset.rows = String(p.rows);
    this.text.textContent =
      `Reading ${fileName}: ${formatBytes(p.bytesRead)} of ${formatBytes(p.totalBytes)}, ` +
      `${p.lines.toLocaleString('en-US')} lines (${p.rows.toLocaleString('en-US')} rows, ${p.invalid.toLocaleString('en-US')} invalid)`;
  }

  hide(): void {
    this.element.hidden = true;
  }
}

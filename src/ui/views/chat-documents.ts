/**
 * The documents chat answers from: add .txt, .md and .html files (each is split into passages and
 * indexed by the engine), see what is stored, remove one. File names and errors go in as text.
 */
import type { DocumentRecord } from '../../app/api';
import type { App } from '../app';
import { el, errorMessage, Notice, plural } from '../dom';

export class ChatDocumentsView {
  readonly element: HTMLElement;
  private readonly notice = new Notice('documents-error');
  private readonly list = el('ul', { class: 'document-list', 'data-testid': 'document-list' });

  constructor(private readonly app: App) {
    const input = el('input', {
      type: 'file',
      multiple: true,
      accept: '.txt,.text,.md,.markdown,.html,.htm,text/plain,text/markdown,text/html',
      class: 'visually-hidden',
      id: 'document-file',
      'data-testid': 'document-file',
    });
    input.addEventListener('change', () => {
      const files = [...(input.files ?? [])];
      input.value = '';
      void this.add(files);
    });
    this.element = el(
      'section',
      { class: 'chat-documents', 'data-testid': 'chat-documents' },
      el('h3', {}, 'Your documents'),
      el(
        'p',
        { class: 'muted small' },
        '.txt, .md and .html files, split into passages and searched for each message (PDF is not read: save it as text or HTML).',
      ),
      el('label', { class: 'button secondary', for: 'document-file' }, 'Add documents…', input),
      this.notice.element,
      this.list,
    );
  }

  async refresh(): Promise<void> {
    this.render(await this.app.engine.listDocuments());
  }

  private render(documents: DocumentRecord[]): void {
    this.list.replaceChildren(
      ...documents.map((d) =>
        el(
          'li',
          { 'data-testid': 'document-item', 'data-name': d.name, 'data-passages': d.passages },
          el('strong', {}, d.name),
          el('span', { class: 'muted small' }, ` · ${plural(d.passages, 'passage')} · ${d.chars.toLocaleString('en-US')} characters`),
          el('button', { type: 'button', class: 'link danger', onclick: () => void this.remove(d.name) }, 'Remove'),
        ),
      ),
    );
    if (documents.length === 0) this.list.append(el('li', { class: 'muted empty' }, 'No documents yet: replies use no sources.'));
  }

  private async add(files: File[]): Promise<void> {
    this.notice.clear();
    const problems: string[] = [];
    for (const file of files) {
      try {
        await this.app.engine.addDocument(file, file.name);
      } catch (error) {
        problems.push(errorMessage(error));
      }
    }
    if (problems.length) this.notice.show(problems.join(' '));
    await this.refresh();
  }

  private async remove(name: string): Promise<void> {
    try {
      await this.app.engine.removeDocument(name);
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
    await this.refresh();
  }
}

/**
 * The chat log: every stored conversation with its ratings, corrections, sources and adapters,
 * searched and filtered by the engine (chat-log.ts); conversations picked here become training
 * rows ("Add to dataset"), or the rated-up and corrected replies of the whole log do; the log
 * downloads as JSONL.
 */
import type { ConversationQuery, ConversationSummary } from '../../app/api';
import type { App } from '../app';
import { downloadBytes, el, errorMessage, Notice, plural } from '../dom';

export interface ChatLogActions {
  open(id: string): void;
  /** The conversation was deleted (the panel drops it if it is open). */
  deleted(id: string): void;
}

const select = (testId: string, label: string, options: [string, string][]) =>
  el('select', { 'data-testid': testId, 'aria-label': label }, ...options.map(([value, text]) => el('option', { value }, text)));

export class ChatLogView {
  readonly element: HTMLElement;
  private readonly notice = new Notice('chat-log-notice');
  private readonly list = el('ul', { class: 'chat-log-list', 'data-testid': 'chat-log-list' });
  private readonly search = el('input', { type: 'search', placeholder: 'Search the conversations', 'data-testid': 'chat-log-search' });
  private readonly rating = select('chat-log-rating', 'Rating', [
    ['any', 'Any rating'],
    ['rated', 'Rated'],
    ['up', 'Rated good'],
    ['down', 'Rated bad'],
    ['unrated', 'Not rated'],
  ]);
  private readonly corrected = select('chat-log-corrected', 'Corrected', [
    ['any', 'Corrected or not'],
    ['yes', 'Corrected'],
    ['no', 'Not corrected'],
  ]);
  private readonly rag = select('chat-log-rag', 'RAG', [
    ['any', 'With or without sources'],
    ['yes', 'With sources (RAG)'],
    ['no', 'Without sources'],
  ]);
  private readonly adapter = select('chat-log-adapter', 'Adapter', [
    ['any', 'Any model'],
    ['base', 'Base model'],
  ]);
  private readonly datasetName = el('input', {
    type: 'text',
    value: 'chat log',
    'data-testid': 'chat-dataset-name',
    'aria-label': 'Dataset name',
  });
  private readonly picked = new Set<string>();
  private request = 0;

  constructor(
    private readonly app: App,
    private readonly actions: ChatLogActions,
  ) {
    this.search.addEventListener('input', () => void this.refresh());
    for (const control of [this.rating, this.corrected, this.rag, this.adapter])
      control.addEventListener('change', () => void this.refresh());
    this.element = el(
      'section',
      { class: 'chat-log', 'data-testid': 'chat-log' },
      el('h3', {}, 'Conversation log'),
      el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Search'), this.search),
      el('div', { class: 'fields three chat-log-filters' }, this.rating, this.corrected, this.rag, this.adapter),
      this.list,
      el(
        'div',
        { class: 'inline' },
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'New dataset'), this.datasetName),
        el(
          'button',
          { type: 'button', 'data-testid': 'add-picked-to-dataset', onclick: () => void this.toDataset(true) },
          'Add picked to dataset',
        ),
        el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'add-rated-to-dataset', onclick: () => void this.toDataset(false) },
          'Add all rated good and corrected',
        ),
        el(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'export-log', onclick: () => void this.export() },
          'Export log (JSONL)',
        ),
      ),
      el(
        'p',
        { class: 'muted small' },
        'Rows are the messages the model was given with the answer: the correction when there is one. Replies rated bad and not ' +
          'corrected are left out, and so are stopped ones unless rated good or corrected.',
      ),
      this.notice.element,
    );
    app.watch(
      (s) => [s.adapters],
      (adapters) => {
        const value = this.adapter.value;
        this.adapter.replaceChildren(
          el('option', { value: 'any' }, 'Any model'),
          el('option', { value: 'base' }, 'Base model'),
          ...adapters.map((a) => el('option', { value: a.id }, a.name)),
        );
        this.adapter.value = [...this.adapter.options].some((o) => o.value === value) ? value : 'any';
      },
    );
  }

  private query(): ConversationQuery {
    return {
      search: this.search.value,
      rating: this.rating.value as ConversationQuery['rating'],
      corrected: this.corrected.value as ConversationQuery['corrected'],
      rag: this.rag.value as ConversationQuery['rag'],
      adapter: this.adapter.value,
    };
  }

  async refresh(): Promise<void> {
    const request = ++this.request;
    const list = await this.app.engine.listConversations(this.query());
    if (request === this.request) this.render(list);
  }

  private render(conversations: ConversationSummary[]): void {
    this.list.replaceChildren(...conversations.map((c) => this.itemView(c)));
    if (conversations.length === 0) this.list.append(el('li', { class: 'muted empty' }, 'No conversation matches.'));
  }

  private itemView(c: ConversationSummary): HTMLElement {
    const pick = el('input', { type: 'checkbox', 'data-testid': 'chat-log-pick', checked: this.picked.has(c.id), 'aria-label': 'Pick' });
    pick.addEventListener('change', () => (pick.checked ? this.picked.add(c.id) : this.picked.delete(c.id)));
    const tags = [
      plural(c.turns, 'turn'),
      c.ratedUp ? `${c.ratedUp} rated good` : '',
      c.ratedDown ? `${c.ratedDown} rated bad` : '',
      c.corrected ? `${c.corrected} corrected` : '',
      c.rag ? 'RAG' : '',
      ...c.adapters.map((a) => a.name),
    ].filter(Boolean);
    return el(
      'li',
      {
        class: 'chat-log-item',
        'data-testid': 'chat-log-item',
        'data-id': c.id,
        'data-rated-up': c.ratedUp,
        'data-rated-down': c.ratedDown,
        'data-corrected': c.corrected,
        'data-rag': String(c.rag),
      },
      pick,
      el('button', { type: 'button', class: 'link', 'data-testid': 'chat-log-open', onclick: () => this.actions.open(c.id) }, c.title),
      el('span', { class: 'muted small' }, ` · ${new Date(c.updatedAt).toLocaleString()} · `, tags.join(' · ')),
      el('button', { type: 'button', class: 'link danger', onclick: () => void this.remove(c) }, 'Delete'),
    );
  }

  private async toDataset(picked: boolean): Promise<void> {
    this.notice.clear();
    try {
      const dataset = await this.app.engine.addConversationsToDataset({
        conversationIds: picked ? [...this.picked] : null,
        name: this.datasetName.value,
      });
      await this.app.refreshDatasets();
      this.app.update({ trainDatasetId: dataset.id });
      this.notice.show(
        `Stored ${plural(dataset.rowCount, 'row')} as the dataset "${dataset.name}", chosen as training data in step 2.`,
        'ok',
      );
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private async export(): Promise<void> {
    try {
      const jsonl = await this.app.engine.exportConversations(null);
      downloadBytes(new TextEncoder().encode(jsonl), 'webtune-chat-log.jsonl', 'application/jsonl');
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private async remove(c: ConversationSummary): Promise<void> {
    if (!confirm(`Delete the conversation "${c.title}"? Datasets made from it keep their rows.`)) return;
    try {
      await this.app.engine.deleteConversation(c.id);
      this.picked.delete(c.id);
      this.actions.deleted(c.id);
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
    await this.refresh();
  }
}

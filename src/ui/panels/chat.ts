/**
 * Chat: a playground on the loaded model, over the user's documents, that keeps every conversation
 * to rate, correct and turn into training data. The engine does the work (src/app/chat.ts): it
 * finds the sources, renders the prompt and streams the reply through `chat`'s events, which this
 * panel draws in place; the page only ever waits on messages from the worker.
 */
import '../chat.css';
import type { ChatEvent, ConversationRecord, Rating, ReplyRef } from '../../app/api';
import type { App, Panel } from '../app';
import { el, errorMessage, Notice, panelHeader } from '../dom';
import { ChatDocumentsView } from '../views/chat-documents';
import { ChatLogView } from '../views/chat-log';
import { ChatSettingsView } from '../views/chat-settings';
import { ChatThreadView } from '../views/chat-thread';

export class ChatPanel implements Panel {
  readonly element: HTMLElement;
  private readonly notice = new Notice('chat-error');
  private readonly input = el('textarea', { rows: 3, 'data-testid': 'chat-input', 'aria-label': 'Message', placeholder: 'Ask something…' });
  private readonly send = el('button', { type: 'button', class: 'primary', 'data-testid': 'chat-send' }, 'Send');
  private readonly stop = el('button', { type: 'button', class: 'secondary', 'data-testid': 'chat-stop', disabled: true }, 'Stop');
  private readonly title = el('h3', { 'data-testid': 'chat-title' }, 'New conversation');
  private readonly documents: ChatDocumentsView;
  private readonly settings: ChatSettingsView;
  private readonly thread: ChatThreadView;
  private readonly log: ChatLogView;
  private conversation: ConversationRecord | null = null;
  private busy = false;

  constructor(private readonly app: App) {
    this.documents = new ChatDocumentsView(app);
    this.settings = new ChatSettingsView(app);
    this.thread = new ChatThreadView({
      rate: (ref, rating) => void this.rate(ref, rating),
      correct: (ref, correction) => void this.update(() => app.engine.correctReply(ref, correction)),
      choose: (ref) => void this.update(() => app.engine.chooseReply(ref)),
    });
    this.log = new ChatLogView(app, {
      open: (id) => void this.open(id),
      deleted: (id) => {
        if (this.conversation?.id === id) this.show(null);
      },
    });
    this.send.addEventListener('click', () => void this.sendMessage());
    this.stop.addEventListener('click', () => void app.engine.stopGeneration());
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) void this.sendMessage();
    });
    const newConversation = el(
      'button',
      { type: 'button', class: 'secondary', 'data-testid': 'chat-new', onclick: () => this.show(null) },
      'New conversation',
    );
    this.element = el(
      'section',
      { class: 'panel chat-panel' },
      panelHeader(
        'Chat',
        'Talk to the loaded model, with or without an adapter, over your documents. Every conversation is kept: rate replies, ' +
          'correct them, and add them to a dataset to train on.',
      ),
      this.documents.element,
      this.settings.element,
      el('div', { class: 'inline chat-head' }, this.title, newConversation),
      this.thread.element,
      el('div', { class: 'chat-composer' }, this.input, el('div', { class: 'actions' }, this.stop, this.send)),
      this.notice.element,
      this.log.element,
    );
    this.show(null);
    app.watch(
      (s) => [s.training, s.model],
      () => this.renderButtons(),
    );
    // Storage is open once the engine has started.
    app.watch(
      (s) => [s.device !== null],
      (started) => {
        if (started) void this.refreshStored();
      },
    );
    app.watch(
      (s) => [s.model?.name ?? null],
      (model) => app.note('chat', model ? 'Chat, rate, correct' : 'After loading a model'),
    );
  }

  private async refreshStored(): Promise<void> {
    try {
      await Promise.all([this.documents.refresh(), this.log.refresh()]);
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private renderButtons(): void {
    const { training, model } = this.app.state;
    this.send.disabled = this.busy || training || !model;
    this.send.title = training
      ? 'The GPU is busy training; pause or wait for the run to finish.'
      : model
        ? ''
        : 'Load a model first (step 1).';
    this.stop.disabled = !this.busy;
  }

  private show(conversation: ConversationRecord | null): void {
    this.conversation = conversation;
    this.title.textContent = conversation ? conversation.title : 'New conversation';
    this.title.dataset.id = conversation?.id ?? '';
    this.thread.render(conversation);
  }

  private async open(id: string): Promise<void> {
    this.notice.clear();
    try {
      this.show(await this.app.engine.getConversation(id));
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private async sendMessage(): Promise<void> {
    if (this.busy || this.send.disabled) return;
    const message = this.input.value;
    this.notice.clear();
    this.busy = true;
    this.renderButtons();
    const onEvent = (event: ChatEvent) => {
      switch (event.type) {
        case 'turn':
          this.thread.startTurn(event.turn);
          break;
        case 'reply-start':
          this.thread.startReply(event.reply, event.adapterName, event.adapterScale);
          break;
        case 'token':
          this.thread.token(event.reply, event.text, event.tokens);
          break;
        case 'reply':
          this.thread.finishReply(event.reply, event.value);
          break;
      }
    };
    try {
      const result = await this.app.engine.chat(
        { conversationId: this.conversation?.id ?? null, message, settings: this.settings.read() },
        onEvent,
      );
      this.input.value = '';
      this.show(result.conversation);
      await this.log.refresh();
    } catch (error) {
      this.notice.show(errorMessage(error));
      this.show(this.conversation);
    } finally {
      this.busy = false;
      this.renderButtons();
    }
  }

  private async rate(ref: ReplyRef, rating: Rating | null): Promise<void> {
    await this.update(() => this.app.engine.rateReply(ref, rating));
  }

  /** A change to a stored reply: the conversation as stored afterwards is drawn again, and the log. */
  private async update(change: () => Promise<ConversationRecord>): Promise<void> {
    this.notice.clear();
    try {
      this.show(await change());
      await this.log.refresh();
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }
}

/**
 * One conversation as the chat step shows it: per turn the user's message, the numbered sources it
 * was given, the rendered prompt ("Show prompt") and the replies (two side by side), each with the
 * sources it cited, its rating and its correction beside the generated text, which is kept. While
 * a turn streams, its reply text is replaced in place token by token. Everything is text content.
 */
import type { ChatReply, ChatSource, ChatTurn, ConversationRecord, Rating, ReplyRef } from '../../app/api';
import { el } from '../dom';

export interface ReplyActions {
  rate(ref: ReplyRef, rating: Rating | null): void;
  correct(ref: ReplyRef, correction: string | null): void;
  choose(ref: ReplyRef): void;
}

const citeList = (ids: number[]) => (ids.length ? ids.map((n) => `[${n}]`).join(' ') : 'none');

function sourcesView(sources: ChatSource[]): HTMLElement {
  if (sources.length === 0) return el('p', { class: 'muted small', 'data-testid': 'chat-no-sources' }, 'No sources given.');
  return el(
    'ol',
    { class: 'chat-sources', 'data-testid': 'chat-sources' },
    ...sources.map((s) =>
      el(
        'li',
        { 'data-testid': 'chat-source', 'data-source': s.id, 'data-document': s.document },
        el('strong', {}, `[${s.id}] `),
        el('span', { class: 'muted' }, `${s.label ?? s.document}: `),
        s.text,
      ),
    ),
  );
}

function promptView(turn: Pick<ChatTurn, 'system' | 'prompt'>): HTMLElement {
  return el(
    'details',
    { class: 'chat-prompt', 'data-testid': 'chat-prompt-view' },
    el('summary', {}, 'Show prompt'),
    el('p', { class: 'small muted' }, 'System message:'),
    el('pre', { 'data-testid': 'chat-system' }, turn.system ?? '(none)'),
    el('p', { class: 'small muted' }, 'What the model continued (the chat template applied):'),
    el('pre', { 'data-testid': 'chat-prompt' }, turn.prompt),
  );
}

const replyLabel = (adapterName: string | null, scale: number) =>
  adapterName === null
    ? 'Base model'
    : scale === 0
      ? `${adapterName} (off: base model)`
      : scale === 1
        ? adapterName
        : `${adapterName} × ${scale}`;

export class ChatThreadView {
  readonly element = el('div', { class: 'chat-thread', 'data-testid': 'chat-thread' });
  /** The reply elements of the turn streaming now, by reply position. */
  private streaming = new Map<number, { box: HTMLElement; text: HTMLElement }>();
  private pendingTurn: HTMLElement | null = null;

  constructor(private readonly actions: ReplyActions) {}

  render(conversation: ConversationRecord | null): void {
    this.streaming.clear();
    this.pendingTurn = null;
    if (!conversation) {
      this.element.replaceChildren(el('p', { class: 'muted', 'data-testid': 'chat-empty' }, 'A new conversation: write a message below.'));
      return;
    }
    this.element.replaceChildren(...conversation.turns.map((turn) => this.turnView(conversation.id, turn)));
  }

  /** A turn whose replies are about to stream. */
  startTurn(turn: ChatTurn): void {
    this.element.querySelector('[data-testid="chat-empty"]')?.remove();
    this.pendingTurn = this.turnView(null, turn);
    this.element.append(this.pendingTurn);
  }

  startReply(index: number, adapterName: string | null, scale: number): void {
    const text = el('p', { class: 'chat-reply-text', 'data-testid': 'chat-reply-text' });
    const box = el(
      'div',
      { class: 'chat-reply', 'data-testid': 'chat-reply', 'data-state': 'streaming', 'data-tokens': 0, 'data-index': index },
      el('p', { class: 'chat-reply-head' }, replyLabel(adapterName, scale)),
      text,
    );
    this.streaming.set(index, { box, text });
    this.pendingTurn?.querySelector('.chat-replies')?.append(box);
  }

  token(index: number, text: string, tokens: number): void {
    const reply = this.streaming.get(index);
    if (!reply) return;
    reply.text.textContent = text;
    reply.box.dataset.tokens = String(tokens);
  }

  finishReply(index: number, reply: ChatReply): void {
    const streaming = this.streaming.get(index);
    if (!streaming) return;
    streaming.text.textContent = reply.text;
    streaming.box.dataset.tokens = String(reply.tokens);
    streaming.box.dataset.state = reply.stopped ? 'stopped' : 'done';
  }

  private turnView(conversationId: string | null, turn: ChatTurn): HTMLElement {
    const replies = el(
      'div',
      { class: `chat-replies${turn.replies.length > 1 || turn.settings.sideBySide ? ' side-by-side' : ''}` },
      ...turn.replies.map((reply, i) => this.replyView(conversationId, turn, reply, i)),
    );
    return el(
      'article',
      { class: 'chat-turn', 'data-testid': 'chat-turn', 'data-turn-id': turn.id },
      el('p', { class: 'chat-user', 'data-testid': 'chat-user' }, turn.user),
      sourcesView(turn.sources),
      promptView(turn),
      replies,
    );
  }

  private replyView(conversationId: string | null, turn: ChatTurn, reply: ChatReply, index: number): HTMLElement {
    const ref = conversationId ? { conversationId, turnId: turn.id, replyId: reply.id } : null;
    const corrected = reply.correction !== null;
    const box = el('div', {
      class: 'chat-reply',
      'data-testid': 'chat-reply',
      'data-reply-id': reply.id,
      'data-index': index,
      'data-state': reply.stopped ? 'stopped' : 'done',
      'data-tokens': reply.tokens,
      'data-rating': reply.rating ?? '',
      'data-corrected': String(corrected),
      'data-chosen': String(turn.chosen === index),
    });
    const text = el('p', { class: 'chat-reply-text', 'data-testid': 'chat-reply-text' }, reply.text);
    const body: (HTMLElement | null)[] = corrected
      ? [
          el('p', { class: 'chat-reply-correction', 'data-testid': 'chat-reply-correction' }, reply.correction!),
          el('p', { class: 'small muted' }, 'Generated (kept beside the correction):'),
          text,
        ]
      : [text];
    const given = turn.sources.map((s) => s.id);
    const citations = el(
      'p',
      {
        class: 'small muted',
        'data-testid': 'chat-citations',
        'data-cited': reply.citations.valid.join(','),
        'data-given': given.join(','),
      },
      `Sources given: ${citeList(given)} · cited: ${citeList(reply.citations.valid)}`,
      reply.citations.missing.length ? ` · cited but never given: ${citeList(reply.citations.missing)}` : '',
    );
    const meta = `${reply.tokens} tokens, ${(reply.ms / 1000).toFixed(1)} s${reply.stopped ? ', stopped' : ''}`;
    box.append(
      el(
        'p',
        { class: 'chat-reply-head' },
        replyLabel(reply.adapterName, reply.adapterScale),
        el('span', { class: 'muted small' }, ` · ${meta}`),
      ),
      ...body.filter((part) => part !== null),
      citations,
    );
    if (ref) box.append(this.actionsView(ref, turn, reply, index, box));
    return box;
  }

  private actionsView(ref: ReplyRef, turn: ChatTurn, reply: ChatReply, index: number, box: HTMLElement): HTMLElement {
    const rate = (rating: Rating, label: string, testId: string) =>
      el(
        'button',
        {
          type: 'button',
          class: 'secondary',
          'data-testid': testId,
          'aria-pressed': String(reply.rating === rating),
          onclick: () => this.actions.rate(ref, reply.rating === rating ? null : rating),
        },
        label,
      );
    const edit = () => {
      const input = el('textarea', { rows: 4, 'data-testid': 'correction-input', 'aria-label': 'The answer it should have been' });
      input.value = reply.correction ?? reply.text;
      const form = el(
        'div',
        { class: 'chat-correction', 'data-testid': 'correction-form' },
        input,
        el(
          'div',
          { class: 'actions' },
          el('button', { type: 'button', class: 'secondary', onclick: () => form.remove() }, 'Cancel'),
          reply.correction !== null
            ? el('button', { type: 'button', class: 'secondary', onclick: () => this.actions.correct(ref, null) }, 'Remove correction')
            : null,
          el(
            'button',
            { type: 'button', 'data-testid': 'correction-save', onclick: () => this.actions.correct(ref, input.value) },
            'Save correction',
          ),
        ),
      );
      box.append(form);
      input.focus();
    };
    return el(
      'div',
      { class: 'inline chat-reply-actions' },
      rate('up', 'Good', 'rate-up'),
      rate('down', 'Bad', 'rate-down'),
      el('button', { type: 'button', class: 'secondary', 'data-testid': 'correct-reply', onclick: edit }, 'Correct this answer'),
      turn.replies.length > 1 && turn.chosen !== index
        ? el(
            'button',
            { type: 'button', class: 'link', 'data-testid': 'choose-reply', onclick: () => this.actions.choose(ref) },
            'Continue from this reply',
          )
        : null,
    );
  }
}

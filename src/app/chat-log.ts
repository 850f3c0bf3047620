/**
 * The chat log as data: which replies become training rows, the conversation list's summaries and
 * filters, and the JSONL export. Pure functions over stored conversations.
 *
 * Training rows (`trainingRows`): one row per included reply, in the messages format, holding what
 * the model was given (the turn's system message with its numbered sources, the earlier turns, the
 * user's message) and the answer: the correction when there is one, else the generated text.
 * - Included replies: with `'chosen'` (conversations the user picked) every reply except one rated
 *   down and not corrected, and except an uncorrected reply that was stopped or is empty; with
 *   `'rated'` (the whole log) only the replies rated up or corrected.
 * - Earlier turns appear with the reply the conversation went on from (`chosen`), corrected where
 *   corrected. Chat rows train every assistant turn, so a row never carries an earlier answer that
 *   would not be included on its own: its history starts after the last such turn.
 */
import type { DatasetRow, Message } from '../data/types';
import type { ChatReply, ChatTurn, ConversationRecord } from '../storage/db';

export type RowSelection = 'chosen' | 'rated';

export interface ConversationSummary {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  model: string;
  turns: number;
  replies: number;
  ratedUp: number;
  ratedDown: number;
  corrected: number;
  /** Some turn was given numbered sources from the documents. */
  rag: boolean;
  /** Some reply came from the base model alone (no adapter, or the adapter switched off). */
  base: boolean;
  /** The adapters replies came from, by id, with their names. */
  adapters: { id: string; name: string }[];
}

export interface ConversationQuery {
  /** Every word must occur (any case) in the title, a message, a reply, a correction or a source's document name. */
  search?: string;
  rating?: 'any' | 'rated' | 'up' | 'down' | 'unrated';
  corrected?: 'any' | 'yes' | 'no';
  rag?: 'any' | 'yes' | 'no';
  /** 'any'; 'base': a reply of the base model alone; otherwise an adapter id. */
  adapter?: string;
}

/** The answer a reply stands for: the correction when there is one. */
export const replyAnswer = (reply: ChatReply): string => reply.correction ?? reply.text;

const usedAdapter = (reply: ChatReply) => reply.adapterId !== null && reply.adapterScale !== 0;

function included(reply: ChatReply, selection: RowSelection): boolean {
  if (reply.correction !== null) return reply.correction.trim() !== '';
  if (reply.text.trim() === '' || reply.rating === 'down') return false;
  return reply.rating === 'up' || (selection === 'chosen' && !reply.stopped);
}

/**
 * The earlier turns as messages, each with the reply the conversation went on from; turns whose
 * answer is empty (stopped before its first token) are left out. `forTraining`: only from after the
 * last turn whose chosen reply would not be included as a row of its own.
 */
function history(turns: readonly ChatTurn[], forTraining: boolean): Message[] {
  let start = 0;
  if (forTraining) {
    turns.forEach((turn, i) => {
      if (!included(turn.replies[turn.chosen], 'chosen')) start = i + 1;
    });
  }
  return turns.slice(start).flatMap((turn) => {
    const answer = replyAnswer(turn.replies[turn.chosen]).trim();
    return answer === ''
      ? []
      : [
          { role: 'user' as const, content: turn.user },
          { role: 'assistant' as const, content: answer },
        ];
  });
}

/** What the model is given for a new turn after `turns`: its system message, the earlier turns and the user's message. */
export function promptMessages(turns: readonly ChatTurn[], turn: Pick<ChatTurn, 'system' | 'user'>, forTraining = false): Message[] {
  return [
    ...(turn.system === null ? [] : [{ role: 'system' as const, content: turn.system }]),
    ...history(turns, forTraining),
    { role: 'user', content: turn.user },
  ];
}

export function trainingRows(conversations: readonly ConversationRecord[], selection: RowSelection): DatasetRow[] {
  const rows: DatasetRow[] = [];
  for (const conversation of conversations) {
    conversation.turns.forEach((turn, t) => {
      const prompt = promptMessages(conversation.turns.slice(0, t), turn, true);
      for (const reply of turn.replies) {
        if (included(reply, selection)) {
          rows.push({ kind: 'chat', messages: [...prompt, { role: 'assistant', content: replyAnswer(reply).trim() }] });
        }
      }
    });
  }
  return rows;
}

export function summarize(c: ConversationRecord): ConversationSummary {
  const replies = c.turns.flatMap((t) => t.replies);
  const adapters = new Map<string, string>();
  for (const r of replies) if (usedAdapter(r)) adapters.set(r.adapterId!, r.adapterName ?? r.adapterId!);
  return {
    id: c.id,
    title: c.title,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
    model: c.model,
    turns: c.turns.length,
    replies: replies.length,
    ratedUp: replies.filter((r) => r.rating === 'up').length,
    ratedDown: replies.filter((r) => r.rating === 'down').length,
    corrected: replies.filter((r) => r.correction !== null).length,
    rag: c.turns.some((t) => t.sources.length > 0),
    base: replies.some((r) => !usedAdapter(r)),
    adapters: [...adapters].map(([id, name]) => ({ id, name })),
  };
}

function searchable(c: ConversationRecord): string {
  const parts = [c.title];
  for (const t of c.turns) {
    parts.push(t.user, ...t.sources.map((s) => s.document));
    for (const r of t.replies) parts.push(r.text, r.correction ?? '');
  }
  return parts.join('\n').toLowerCase();
}

export function matchesQuery(c: ConversationRecord, query: ConversationQuery): boolean {
  const s = summarize(c);
  const words = (query.search ?? '').toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length > 0) {
    const text = searchable(c);
    if (!words.every((w) => text.includes(w))) return false;
  }
  const rated = s.ratedUp + s.ratedDown > 0;
  switch (query.rating ?? 'any') {
    case 'rated':
      if (!rated) return false;
      break;
    case 'up':
      if (s.ratedUp === 0) return false;
      break;
    case 'down':
      if (s.ratedDown === 0) return false;
      break;
    case 'unrated':
      if (rated) return false;
      break;
  }
  if (query.corrected === 'yes' && s.corrected === 0) return false;
  if (query.corrected === 'no' && s.corrected > 0) return false;
  if (query.rag === 'yes' && !s.rag) return false;
  if (query.rag === 'no' && s.rag) return false;
  const adapter = query.adapter ?? 'any';
  if (adapter === 'base' && !s.base) return false;
  if (adapter !== 'any' && adapter !== 'base' && !s.adapters.some((a) => a.id === adapter)) return false;
  return true;
}

/** The log as JSONL: one stored conversation per line, every field as stored (README, "The chat log"). */
export function logJsonl(conversations: readonly ConversationRecord[]): string {
  return conversations.map((c) => `${JSON.stringify(c)}\n`).join('');
}

import { describe, expect, it } from 'vitest';
import { logJsonl, matchesQuery, promptMessages, summarize, trainingRows } from '../../src/app/chat-log';
import type { ChatReply, ChatTurn, ConversationRecord } from '../../src/storage/db';
import { conversation } from '../storage/fixtures';

const base = conversation();
const baseTurn = base.turns[0];
const baseReply = baseTurn.replies[0];

function reply(id: string, overrides: Partial<ChatReply> = {}): ChatReply {
  return { ...baseReply, id, ...overrides };
}

function turn(id: string, user: string, replies: ChatReply[], overrides: Partial<ChatTurn> = {}): ChatTurn {
  return { ...baseTurn, id, user, replies, chosen: replies.length - 1, ...overrides };
}

function log(...turns: ChatTurn[]): ConversationRecord {
  return { ...base, turns };
}

const SYSTEM = baseTurn.system!;

describe('training rows from the chat log', () => {
  it('puts the corrected answer in place of the generated one, with the system message and user turn the model was given', () => {
    const c = log(turn('t1', 'How long do refunds take?', [reply('r1', { text: 'Two weeks.', correction: 'Five days [1].' })]));
    expect(trainingRows([c], 'chosen')).toEqual([
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: SYSTEM },
          { role: 'user', content: 'How long do refunds take?' },
          { role: 'assistant', content: 'Five days [1].' },
        ],
      },
    ]);
  });

  it('leaves out thumbs-down replies unless corrected, and stopped or empty ones unless rated up or corrected', () => {
    const c = log(
      turn('t1', 'a?', [reply('up', { text: 'A.', rating: 'up' })]),
      turn('t2', 'b?', [reply('down', { text: 'B.', rating: 'down' })]),
      turn('t3', 'c?', [reply('fixed', { text: 'C.', rating: 'down', correction: 'C, fixed.' })]),
      turn('t4', 'd?', [reply('plain', { text: 'D.' })]),
      turn('t5', 'e?', [reply('stopped', { text: 'E', stopped: true })]),
      turn('t6', 'f?', [reply('empty', { text: '', stopped: true })]),
    );
    const answers = (rows: ReturnType<typeof trainingRows>) => rows.map((r) => (r.kind === 'chat' ? r.messages.at(-1)!.content : null));
    expect(answers(trainingRows([c], 'chosen'))).toEqual(['A.', 'C, fixed.', 'D.']);
    // The whole log's rated-up and corrected replies only.
    expect(answers(trainingRows([c], 'rated'))).toEqual(['A.', 'C, fixed.']);
  });

  it('carries the earlier turns, but never an earlier answer that would not be a row of its own', () => {
    const c = log(
      turn('t1', 'first?', [reply('r1', { text: 'One.' })], { system: null }),
      turn('t2', 'second?', [reply('r2', { text: 'Bad.', rating: 'down' })], { system: null }),
      turn('t3', 'third?', [reply('r3', { text: 'Three.', rating: 'up' })]),
    );
    const rows = trainingRows([c], 'chosen');
    expect(rows).toHaveLength(2);
    expect(rows[1]).toEqual({
      kind: 'chat',
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: 'third?' },
        { role: 'assistant', content: 'Three.' },
      ],
    });
    // Generation still sees the whole conversation as it stands.
    expect(promptMessages(c.turns.slice(0, 2), { system: SYSTEM, user: 'third?' }).map((m) => m.content)).toEqual([
      SYSTEM,
      'first?',
      'One.',
      'second?',
      'Bad.',
      'third?',
    ]);
  });

  it('builds on the chosen reply of a side-by-side turn, corrected where corrected; both replies can be rows', () => {
    const c = log(
      turn('t1', 'q1?', [
        reply('base', { text: 'Base.', rating: 'up' }),
        reply('ad', { adapterId: 'ad-1', text: 'Ad.', correction: 'Ad, fixed.' }),
      ]),
      turn('t2', 'q2?', [reply('r2', { text: 'Two.', rating: 'up' })]),
    );
    const rows = trainingRows([c], 'rated');
    expect(rows.map((r) => (r.kind === 'chat' ? r.messages.map((m) => m.content) : []))).toEqual([
      [SYSTEM, 'q1?', 'Base.'],
      [SYSTEM, 'q1?', 'Ad, fixed.'],
      [SYSTEM, 'q1?', 'Ad, fixed.', 'q2?', 'Two.'],
    ]);
    const chosenBase = log({ ...c.turns[0], chosen: 0 }, c.turns[1]);
    expect(trainingRows([chosenBase], 'rated')[2]).toMatchObject({
      messages: [{ content: SYSTEM }, { content: 'q1?' }, { content: 'Base.' }, { content: 'q2?' }, { content: 'Two.' }],
    });
  });
});

describe('conversation list filters', () => {
  const rated = log(turn('t1', 'Refund period?', [reply('r1', { rating: 'up' })]));
  const corrected = {
    ...log(
      turn('t1', 'Plans?', [reply('r1', { adapterId: 'ad-7', adapterName: 'support v1', correction: 'Three plans.' })], { sources: [] }),
    ),
    id: 'c2',
  };
  const off = {
    ...log(
      turn('t1', 'Hello', [reply('r1', { adapterId: 'ad-7', adapterName: 'support v1', adapterScale: 0, rating: 'down' })], {
        sources: [],
      }),
    ),
    id: 'c3',
  };

  it('summarises ratings, corrections, RAG and the adapters used', () => {
    expect(summarize(rated)).toMatchObject({
      turns: 1,
      replies: 1,
      ratedUp: 1,
      ratedDown: 0,
      corrected: 0,
      rag: true,
      base: true,
      adapters: [],
    });
    expect(summarize(corrected)).toMatchObject({ corrected: 1, rag: false, base: false, adapters: [{ id: 'ad-7', name: 'support v1' }] });
    // An adapter switched off gave the base model's reply.
    expect(summarize(off)).toMatchObject({ ratedDown: 1, base: true, adapters: [] });
  });

  it('filters by words, rating, correction, RAG and adapter', () => {
    const all = [rated, corrected, off];
    const ids = (query: Parameters<typeof matchesQuery>[1]) => all.filter((c) => matchesQuery(c, query)).map((c) => c.id);
    expect(ids({})).toEqual(['conv-1', 'c2', 'c3']);
    expect(ids({ search: 'REFUND period' })).toEqual(['conv-1']);
    expect(ids({ search: 'three plans' })).toEqual(['c2']);
    expect(ids({ search: 'faq.md' })).toEqual(['conv-1']);
    expect(ids({ rating: 'rated' })).toEqual(['conv-1', 'c3']);
    expect(ids({ rating: 'up' })).toEqual(['conv-1']);
    expect(ids({ rating: 'down' })).toEqual(['c3']);
    expect(ids({ rating: 'unrated' })).toEqual(['c2']);
    expect(ids({ corrected: 'yes' })).toEqual(['c2']);
    expect(ids({ corrected: 'no' })).toEqual(['conv-1', 'c3']);
    expect(ids({ rag: 'yes' })).toEqual(['conv-1']);
    expect(ids({ rag: 'no' })).toEqual(['c2', 'c3']);
    expect(ids({ adapter: 'base' })).toEqual(['conv-1', 'c3']);
    expect(ids({ adapter: 'ad-7' })).toEqual(['c2']);
    expect(ids({ adapter: 'ad-7', corrected: 'no' })).toEqual([]);
  });

  it('exports one stored conversation per JSONL line', () => {
    const lines = logJsonl([rated, corrected]).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((line) => JSON.parse(line))).toEqual([rated, corrected]);
  });
});

import 'fake-indexeddb/auto';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeDataset } from '../../src/analysis/analyze';
import type { ChatEvent, ChatTurnSettings } from '../../src/app/api';
import { EngineStateError, WebtuneEngine } from '../../src/app/engine';
import type { AdapterTensors } from '../../src/export/adapter';
import { formatContext, parseContext } from '../../src/rag/context';
import { DocumentError, splitDocument } from '../../src/rag/passages';
import { PassageIndexError } from '../../src/rag/search-index';
import { openWebtuneDb } from '../../src/storage/db';
import { goldenAdapter } from '../export/helpers';
import { engineWithStories, peftZip } from './fixtures';

const REFUNDS = '# Refunds\n\nRefunds are issued within five working days. Annual plans can be refunded in the first month.';
const PLANS = 'The Team plan costs ten euros per seat and month. The Free plan has three projects.';
const file = (text: string) => new Blob([text]);

const SETTINGS: ChatTurnSettings = {
  adapterId: null,
  adapterScale: 1,
  temperature: 0,
  topP: 1,
  maxNewTokens: 6,
  systemPrompt: '',
  useDocuments: true,
  topK: 2,
  sideBySide: false,
};

let golden: AdapterTensors;
beforeAll(async () => {
  golden = await goldenAdapter();
});

describe('documents for chat', () => {
  it('splits, indexes and stores .md and .txt files; refuses PDF and a second copy; keeps them across a reload', async () => {
    const dbName = `chat-docs-${Math.random()}`;
    const engine = new WebtuneEngine({ dbName });
    expect(await engine.addDocument(file(REFUNDS), 'refunds.md')).toMatchObject({ name: 'refunds.md', format: 'markdown', passages: 1 });
    expect(await engine.addDocument(file(PLANS), 'plans.txt')).toMatchObject({ name: 'plans.txt', format: 'text', passages: 1 });
    const pdf = await engine.addDocument(file('%PDF-1.7'), 'manual.pdf').catch((e: unknown) => e);
    expect(pdf).toBeInstanceOf(DocumentError);
    expect((pdf as Error).message).toMatch(/add \.txt, \.md or \.html documents \(got \.pdf\)\. PDF is not read here/);
    await expect(engine.addDocument(file('again'), 'plans.txt')).rejects.toThrow(PassageIndexError);
    expect((await engine.listDocuments()).map((d) => d.name)).toEqual(['refunds.md', 'plans.txt']);

    // A new engine on the same database, as after a page reload.
    const reloaded = new WebtuneEngine({ dbName });
    expect((await reloaded.listDocuments()).map((d) => d.name)).toEqual(['refunds.md', 'plans.txt']);
    await reloaded.removeDocument('refunds.md');
    expect((await reloaded.listDocuments()).map((d) => d.name)).toEqual(['plans.txt']);
    const db = await openWebtuneDb(dbName);
    expect((await db.chat.getDocumentIndex())?.passages.map((p) => p.document)).toEqual(['plans.txt']);
    db.close();
  });
});

describe('chat over documents with stories260K', () => {
  it('streams replies with the top passages as numbered sources, logs, rates, corrects and turns the log into rows', async () => {
    const { engine, dbName } = await engineWithStories();
    await engine.addDocument(file(REFUNDS), 'refunds.md');
    await engine.addDocument(file(PLANS), 'plans.txt');

    const events: ChatEvent[] = [];
    const first = await engine.chat({ conversationId: null, message: 'How long do refunds take?', settings: SETTINGS }, (e) =>
      events.push(e),
    );
    const turn = first.conversation.turns[0];
    expect(events.map((e) => e.type)).toEqual(['turn', 'reply-start', ...Array(turn.replies[0].tokens).fill('token'), 'reply']);
    expect(events[0]).toMatchObject({ type: 'turn', conversationId: first.conversation.id, turn: { id: turn.id, replies: [] } });
    // The refunds passage ranks first; the sources are in exactly formatContext's format.
    expect(turn.sources.map((s) => [s.id, s.document])).toEqual([[1, 'refunds.md']]);
    const expectedSystem = formatContext(splitDocument('refunds.md', REFUNDS))!.system;
    expect(turn.system).toBe(expectedSystem);
    expect(parseContext(turn.system!)?.map((s) => s.text)).toEqual([turn.sources[0].text]);
    expect(turn.prompt).toBe(`<s>System: ${expectedSystem}\n\nUser: How long do refunds take?\n\nAssistant:`);
    // Tokens arrive one by one, each with the reply so far; the last is the reply.
    const tokens = events.flatMap((e) => (e.type === 'token' ? [e] : []));
    expect(tokens.map((t) => t.tokens)).toEqual(tokens.map((_, i) => i + 1));
    expect(tokens.length).toBeGreaterThan(1);
    const reply = turn.replies[0];
    expect(tokens.at(-1)!.text.trim()).toBe(reply.text);
    expect(reply).toMatchObject({ adapterId: null, stopped: false, rating: null, correction: null });
    expect(reply.citations.uncited).toEqual(reply.citations.valid.length ? [] : [1]);
    expect(await engine.getConversation(first.conversation.id)).toEqual(first.conversation);

    // A second turn: the plans passage first, the first turn in the prompt; stopped after its second token.
    const second = await engine.chat(
      { conversationId: first.conversation.id, message: 'What does the Team plan cost?', settings: { ...SETTINGS, maxNewTokens: 20 } },
      (e) => {
        if (e.type === 'token' && e.tokens === 2) void engine.stopGeneration();
      },
    );
    const next = second.conversation.turns[1];
    expect(next.sources[0].document).toBe('plans.txt');
    expect(next.prompt).toContain(`User: How long do refunds take?\n\nAssistant: ${reply.text}</s>\n\nUser: What does the Team plan cost?`);
    expect(next.replies[0]).toMatchObject({ tokens: 2, stopped: true });

    const ref = (t: typeof turn) => ({ conversationId: first.conversation.id, turnId: t.id, replyId: t.replies[0].id });
    await engine.rateReply(ref(turn), 'up');
    await expect(engine.correctReply(ref(next), '  ')).rejects.toThrow(EngineStateError);
    const corrected = await engine.correctReply(ref(next), 'The Team plan costs ten euros per seat and month [1].');
    expect(corrected.turns[1].replies[0]).toMatchObject({
      text: next.replies[0].text,
      correction: 'The Team plan costs ten euros per seat and month [1].',
      citations: { cited: [1], valid: [1], missing: [], uncited: next.sources.map((s) => s.id).filter((n) => n !== 1) },
    });
    const stored = await engine.getConversation(first.conversation.id);
    expect(stored.turns.map((t) => [t.replies[0].rating, t.replies[0].correction])).toEqual([
      ['up', null],
      [null, 'The Team plan costs ten euros per seat and month [1].'],
    ]);
    expect(await engine.listConversations({ rating: 'up', corrected: 'yes', rag: 'yes' })).toMatchObject([
      { id: first.conversation.id, turns: 2, ratedUp: 1, corrected: 1, rag: true },
    ]);
    expect(await engine.listConversations({ rag: 'no' })).toEqual([]);

    // Both replies become rows (the stopped one because it was corrected), the correction in place of the text.
    const dataset = await engine.addConversationsToDataset({ conversationIds: null, name: 'chat rows' });
    expect(dataset).toMatchObject({ name: 'chat rows', rowCount: 2, format: 'messages', invalidLineCount: 0 });
    const analysis = await engine.analyzeDataset(dataset.id);
    expect(analysis.perConversation.map((c) => c.primaryTask)).toEqual(['rag_enhanced', 'rag_enhanced']);
    const db = await openWebtuneDb(dbName);
    const { rows } = await db.getDataset(dataset.id);
    db.close();
    expect(rows).toEqual([
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: turn.system },
          { role: 'user', content: 'How long do refunds take?' },
          { role: 'assistant', content: reply.text },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: next.system },
          { role: 'user', content: 'How long do refunds take?' },
          { role: 'assistant', content: reply.text },
          { role: 'user', content: 'What does the Team plan cost?' },
          { role: 'assistant', content: 'The Team plan costs ten euros per seat and month [1].' },
        ],
      },
    ]);
    expect(analyzeDataset(rows)).toEqual(analysis);

    const log = (await engine.exportConversations(null)).trim().split('\n');
    expect(log.map((line) => JSON.parse(line))).toEqual([stored]);
  });

  it('answers side by side, base first, and the conversation goes on from the chosen reply', async () => {
    const { engine } = await engineWithStories();
    const { id } = await engine.importAdapter(peftZip(golden, 'golden.zip'));
    const settings = { ...SETTINGS, useDocuments: false, adapterId: id, sideBySide: true, maxNewTokens: 4 };
    const starts: ChatEvent[] = [];
    const result = await engine.chat({ conversationId: null, message: 'Once upon a time', settings }, (e) => {
      if (e.type === 'reply-start') starts.push(e);
    });
    const turn = result.conversation.turns[0];
    expect(starts).toMatchObject([
      { reply: 0, adapterName: null },
      { reply: 1, adapterName: 'golden' },
    ]);
    expect(turn.replies.map((r) => [r.adapterId, r.adapterName])).toEqual([
      [null, null],
      [id, 'golden'],
    ]);
    expect(turn).toMatchObject({ system: null, sources: [], chosen: 1 });
    const chosen = await engine.chooseReply({ conversationId: result.conversation.id, turnId: turn.id, replyId: turn.replies[0].id });
    expect(chosen.turns[0].chosen).toBe(0);
    expect(await engine.listConversations({ adapter: id })).toHaveLength(1);

    // A stop during the first reply also skips the second.
    const stopped = await engine.chat({ conversationId: result.conversation.id, message: 'The end', settings }, (e) => {
      if (e.type === 'token') void engine.stopGeneration();
    });
    expect(stopped.conversation.turns[1].replies).toHaveLength(1);
    expect(stopped.conversation.turns[1].prompt).toContain(`User: Once upon a time\n\nAssistant: ${turn.replies[0].text}</s>`);
    await expect(
      engine.chat({
        conversationId: null,
        message: 'Hi',
        settings: { ...settings, sideBySide: false, systemPrompt: 'Be brief. '.repeat(300) },
      }),
    ).rejects.toThrow(/prompt has \d+ tokens and stories260K reads at most 512: give fewer sources per turn, a shorter system prompt/);
    await expect(engine.chat({ conversationId: null, message: 'Hi', settings: { ...settings, adapterId: null } })).rejects.toThrow(
      /Side by side compares the base model with an adapter/,
    );
  });
});

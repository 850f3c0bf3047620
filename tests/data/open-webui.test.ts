import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeDataset } from '../../src/analysis/analyze';
import { parseImport, parseImportBytes } from '../../src/data/import';
import { parseJsonl } from '../../src/data/jsonl';
import { arrayEntryLines, openWebUiChatRow } from '../../src/data/open-webui';
import type { DatasetRow } from '../../src/data/types';
import { evaluateRagExample } from '../../src/eval/rag-metrics';
import { formatSources } from '../../src/rag/context';

const FILE = path.join(__dirname, 'imports/open_webui_export.json');
const TEXT = readFileSync(FILE, 'utf8');

const system = (row: DatasetRow) => (row.kind === 'chat' && row.messages[0].role === 'system' ? row.messages[0].content : '');

describe("Open WebUI's chat export", () => {
  const report = parseImportBytes(new Uint8Array(readFileSync(FILE)), { fileName: 'open_webui_export.json' });

  it('reads the branch the user last saw, with the system prompt and the retrieved sources as the Context: block', () => {
    expect(report.format).toBe('open_webui');
    expect(report.totalEntries).toBe(7);
    expect(report.rows).toHaveLength(3);
    const expectedSystem = formatSources(
      [
        {
          text: 'Annual plans are refundable in full within 30 days of purchase. After 30 days refunds are prorated.',
          label: 'billing.md',
        },
        { text: 'Monthly plans renew automatically.', label: 'faq.html' },
      ],
      { systemPrompt: 'You are the Acme helpdesk.' },
    )!.system;
    expect(report.rows[0]).toEqual({
      kind: 'chat',
      messages: [
        { role: 'system', content: expectedSystem },
        { role: 'user', content: 'Can I get a refund on an annual plan?' },
        // The regenerated-away answer a1 is on another branch; the reasoning block is not part of the answer.
        { role: 'assistant', content: 'Annual plans are refundable in full within 30 days of purchase [1].' },
      ],
    });
    expect(report.rows[1]).toEqual({
      kind: 'chat',
      messages: [
        { role: 'user', content: 'Hi there' },
        { role: 'assistant', content: 'Hello! How can I help?' },
      ],
    });
    expect(system(report.rows[2])).toContain('Context:\n[1] (data.md) EU workspaces store data in Frankfurt.');
  });

  it('makes rows with retrieved sources RAG rows, whose citations point at the right source', () => {
    const analysis = analyzeDataset(report.rows);
    expect(analysis.ragIndices).toEqual([0, 2]);
    for (const i of [0, 2]) {
      const row = report.rows[i];
      if (row.kind !== 'chat') throw new Error('chat rows expected');
      const metrics = evaluateRagExample({ system: system(row), response: row.messages.at(-1)!.content });
      expect(metrics).toMatchObject({ attributed: true, validCitations: [1], missingCitations: [], usesContext: true });
    }
  });

  it('reports each broken chat with its entry, the line it starts on, and the reason', () => {
    expect(report.errors).toEqual([
      {
        line: 113,
        entry: 3,
        reason: 'message 1 has unknown role "tool"; allowed roles: system, user, assistant',
        excerpt: 'title: Tool output',
      },
      { line: 125, entry: 4, reason: 'no assistant turn, so nothing to train on (roles found: user)', excerpt: 'title: No reply' },
      {
        line: 142,
        entry: 5,
        reason: '"chat.history.messages" has no message "zz" (named by currentId or a parentId)',
        excerpt: 'title: Dangling',
      },
      { line: 152, entry: 6, reason: 'each chat must be an object, got string', excerpt: '"not a chat"' },
    ]);
  });

  it('reads the minified export Open WebUI writes (every entry on line 1)', () => {
    const minified = parseImport(JSON.stringify(JSON.parse(TEXT)), { fileName: 'chat-export-1700000000000.json' });
    expect(minified.rows).toEqual(report.rows);
    expect(minified.errors.map((e) => [e.line, e.entry])).toEqual([
      [1, 3],
      [1, 4],
      [1, 5],
      [1, 6],
    ]);
  });

  it('follows parentId from currentId, refusing loops and conversations without one', () => {
    const looped = {
      chat: {
        history: {
          currentId: 'a',
          messages: { a: { parentId: 'b', role: 'assistant', content: 'x' }, b: { parentId: 'a', role: 'user', content: 'y' } },
        },
      },
    };
    expect(openWebUiChatRow(looped)).toBe('"chat.history" loops back to message "a"');
    expect(openWebUiChatRow({ chat: { title: 'empty' } })).toBe(
      'no conversation: expected "chat.history" (with "currentId" and "messages") or a "chat.messages" list',
    );
    expect(openWebUiChatRow({ chat: { history: { currentId: 1, messages: {} } } })).toBe(
      '"chat.history.currentId" must be a message id, got number',
    );
  });

  it('refuses a system prompt that already holds a Context: line when sources must be added', () => {
    const chat = {
      chat: {
        params: { system: 'Context: you are a bank' },
        messages: [
          { role: 'user', content: 'Rates?' },
          {
            role: 'assistant',
            content: 'Two percent [1].',
            sources: [{ source: { name: 'r.md' }, document: ['Rates are two percent.'], metadata: [{}] }],
          },
        ],
      },
    };
    expect(openWebUiChatRow(chat)).toMatch(/^the chat's system prompt has a "Context:" line/);
  });

  it('numbers sources as Open WebUI does: one number per distinct metadata source, in order', () => {
    const row = openWebUiChatRow({
      chat: {
        messages: [
          { role: 'user', content: 'q' },
          {
            role: 'assistant',
            content: 'a [2]',
            sources: [
              {
                source: { id: 'col', name: 'Docs' },
                document: ['one', 'two', 'three'],
                metadata: [{ source: 'a.md' }, { source: 'b.md' }, { source: 'a.md' }],
              },
              { source: { name: 'Web' }, urls: ['https://example.com'] },
            ],
          },
        ],
      },
    });
    expect(typeof row === 'string' ? row : system(row)).toContain('Context:\n[1] (Docs) one three\n[2] (Docs) two');
  });

  it('also reads one chat per JSONL line', () => {
    const line = JSON.stringify({
      id: 'x',
      chat: {
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello!' },
        ],
      },
    });
    expect(parseJsonl(line)).toMatchObject({
      format: 'open_webui',
      rows: [{ kind: 'chat', messages: [{ content: 'Hi' }, { content: 'Hello!' }] }],
    });
  });
});

describe('parseImport: one entry point for every format', () => {
  it('reads JSONL line by line, including a JSONL file saved as .json', () => {
    const jsonl = '{"text":"a"}\n{"messages":[{"role":"user","content":"u"}],"completion":"c"}\n';
    expect(parseImport(jsonl).formats).toMatchObject({ text: 1, openai_log: 1 });
    expect(parseImport(jsonl, { fileName: 'data.json' }).rows).toHaveLength(2);
    // A JSONL file whose first line is an array keeps its other lines.
    expect(parseImport('[1,2]\n{"text":"b"}').rows).toEqual([{ kind: 'text', text: 'b' }]);
  });

  it('reports a broken .json list as one error at the line where it breaks', () => {
    const report = parseImport('[\n  {"chat": {}},\n  {"chat": x}\n]\n', { fileName: 'export.json' });
    expect(report.rows).toEqual([]);
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0].reason).toMatch(
      /^broken JSON: .+; a \.json file must hold one JSON document \(Open WebUI's export is a list of chats\)$/,
    );
    // Node 20's JSON.parse names no position for a bad token (its message quotes the spot), but does say when the input ends early.
    expect(parseImport('[\n  {"chat": {}},\n  {"chat": \n', { fileName: 'export.json' }).errors[0]).toMatchObject({
      line: 3,
      excerpt: '  {"chat": ',
    });
  });

  it('refuses a JSON list with bytes that are not UTF-8', () => {
    const bytes = new Uint8Array([...new TextEncoder().encode('[\n"'), 0xff, ...new TextEncoder().encode('"\n]')]);
    const report = parseImportBytes(bytes, { fileName: 'x.json' });
    expect(report.rows).toEqual([]);
    expect(report.errors).toMatchObject([
      { line: 2, reason: 'not text (binary data?): the line is not valid UTF-8, so the JSON document cannot be read' },
    ]);
  });

  it('finds where each entry of a JSON list starts', () => {
    expect(arrayEntryLines('[\n {"a": "x,\\"[y"},\n\n 2, [3,\n 4], "s"\n]')).toEqual([2, 4, 4, 5]);
    expect(arrayEntryLines('[]')).toEqual([]);
    expect(arrayEntryLines(' [ ]')).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJsonl, parseJsonlBytes } from '../../src/data/jsonl';

const FILE = path.join(__dirname, 'imports/openai_log.jsonl');

describe('OpenAI-style chat-completion logs', () => {
  const report = parseJsonlBytes(new Uint8Array(readFileSync(FILE)), { fileName: 'openai_log.jsonl' });

  it('reads the request messages followed by the response message, in each accepted shape', () => {
    expect(report.rows).toEqual([
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: 'You are the Acme helpdesk.' },
          { role: 'user', content: 'How do I reset my password?' },
          { role: 'assistant', content: 'Open Settings > Security and click Reset password.' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What plans\ndo you offer?' },
          { role: 'assistant', content: 'Free, Team and Enterprise.' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Say hi' },
          { role: 'assistant', content: 'Hi!' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Thanks' },
          { role: 'assistant', content: "You're welcome!" },
        ],
      },
    ]);
    expect(report.format).toBe('openai_log');
    expect(report.formats.openai_log).toBe(4);
    expect(report.totalLines).toBe(13);
    expect(report.skippedBlank).toBe(1);
  });

  it('reports each broken line with its line number and what to do', () => {
    expect(report.errors.map((e) => e.line)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
    expect(report.errors.filter((e) => e.line !== 10).map((e) => [e.line, e.reason])).toEqual([
      [6, 'the logged response is an error: Rate limit reached; there is no reply to train on'],
      [7, 'response.choices[0].message makes tool calls; tool calls cannot be trained as text, so export the exchanges without tools'],
      [8, 'message 1 has a "image_url" content part; only text parts can be trained'],
      [9, 'missing "response": the log line needs the reply as well as the request'],
      [11, '"response.choices" is empty: the response holds no reply'],
      [12, 'message 2 is a tool result; tool calls cannot be trained as text, so export the exchanges without tools'],
      [13, 'response.choices[0].message has role "user"; the reply must be the assistant\'s'],
    ]);
    const json = report.errors.find((e) => e.line === 10)!;
    expect(json.reason).toMatch(/^broken JSON: \S/);
    expect(json.excerpt).toBe('{"request": {"messages": [');
  });

  it('names wrong types in requests and responses', () => {
    const reason = (line: string) => {
      const r = parseJsonl(line);
      expect(r.rows).toEqual([]);
      return r.errors[0].reason;
    };
    expect(reason('{"request":"hi","response":"ok"}')).toBe('"request" must be an object with "messages", got string');
    expect(reason('{"request":{},"response":"ok"}')).toBe('missing "request.messages"');
    expect(reason('{"request":{"messages":{}},"response":"ok"}')).toBe('"request.messages" must be a list, got object');
    expect(reason('{"request":{"messages":[]},"response":"ok"}')).toBe(
      'empty "request.messages" list: the request needs at least the user\'s turn',
    );
    expect(reason('{"messages":[{"role":"user","content":"a"}],"response":7}')).toBe(
      '"response" must be a chat completion, a message or a string, got number',
    );
    expect(reason('{"messages":[{"role":"user","content":"a"}],"response":{"choices":[{"text":"legacy"}]}}')).toBe(
      '"response.choices[0]" has no "message" (a streamed or legacy completion?)',
    );
    expect(
      reason('{"messages":[{"role":"user","content":"a"}],"response":{"choices":[{"message":{"role":"assistant","content":null}}]}}'),
    ).toBe('response.choices[0].message has no text content (a tool call?)');
    expect(reason('{"messages":[{"role":"wizard","content":"a"}],"response":"ok"}')).toBe(
      'message 1 has unknown role "wizard"; allowed roles: system, user, assistant, developer',
    );
    expect(reason('{"messages":[{"role":"user","content":"a"}],"response":"  "}')).toBe('empty content in message 2 (assistant)');
  });

  it('leaves plain messages lines as they were', () => {
    expect(parseJsonl('{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}],"id":1}').formats).toMatchObject({
      messages: 1,
      openai_log: 0,
    });
  });
});

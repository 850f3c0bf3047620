/**
 * What each file in ../shared/data/bad/ must give (lines are 1-based; blank lines count):
 *
 * | file                    | valid rows                                  | errors                                                        |
 * | ----------------------- | ------------------------------------------- | ------------------------------------------------------------- |
 * | alpaca.jsonl            | 1 chat (user "Say hi", assistant "Hi!"),    | none                                                          |
 * |                         | format alpaca (empty "input" is left out)   |                                                               |
 * | binary_garbage.jsonl    | 0, format null, 11 lines                    | lines 1-11: not text (binary data?): the line is not valid    |
 * |                         |                                             | UTF-8                                                         |
 * | bom_crlf.jsonl          | 2 text ("starts with a BOM", "crlf line"),  | none (BOM and \r removed)                                     |
 * |                         | format text                                 |                                                               |
 * | mixed_errors.jsonl      | 2 chat (lines 1 and 9), format messages,    | 2: broken JSON: <parser's message>                            |
 * |                         | 9 lines, line 8 blank (skippedBlank 1)      | 3: empty "messages" list: a conversation needs at least a     |
 * |                         |                                             |    user and an assistant turn                                 |
 * |                         |                                             | 4: message 1 has unknown role "wizard"; allowed roles:        |
 * |                         |                                             |    system, user, assistant                                    |
 * |                         |                                             | 5: empty content in message 1 (user), message 2 (assistant)   |
 * |                         |                                             | 6: "text" must be a string, got number                        |
 * |                         |                                             | 7: not an object: the line is an array; each line must be     |
 * |                         |                                             |    one JSON object such as {"text": "..."}                    |
 * | prompt_completion.jsonl | 1 completion ("Q: 2+2?" -> " 4"),           | none                                                          |
 * |                         | format prompt_completion                    |                                                               |
 * | sharegpt.jsonl          | 1 chat (user "Hi", assistant "Hello!"),     | none                                                          |
 * |                         | format sharegpt                             |                                                               |
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeJsonlBytes, parseJsonl, parseJsonlBytes, type ImportReport } from '../../src/data/jsonl';

const DATA = path.resolve(__dirname, '../../../shared/data');

function importFile(relative: string): ImportReport {
  return parseJsonlBytes(new Uint8Array(readFileSync(path.join(DATA, relative))), { fileName: path.basename(relative) });
}

function reasons(report: ImportReport): [number, string][] {
  return report.errors.map((e) => [e.line, e.reason]);
}

function noFormats() {
  return { messages: 0, sharegpt: 0, alpaca: 0, prompt_completion: 0, text: 0, openai_log: 0, open_webui: 0 };
}

describe('the shared bad files', () => {
  it('alpaca.jsonl: one chat row', () => {
    const report = importFile('bad/alpaca.jsonl');
    expect(report.rows).toEqual([
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Say hi' },
          { role: 'assistant', content: 'Hi!' },
        ],
      },
    ]);
    expect(report.format).toBe('alpaca');
    expect(report.formats).toEqual({ ...noFormats(), alpaca: 1 });
    expect(report.errors).toEqual([]);
    expect(report.totalLines).toBe(1);
  });

  it('binary_garbage.jsonl: every line is reported as binary, nothing crashes', () => {
    const report = importFile('bad/binary_garbage.jsonl');
    expect(report.rows).toEqual([]);
    expect(report.format).toBeNull();
    expect(report.totalLines).toBe(11);
    expect(reasons(report)).toEqual(Array.from({ length: 11 }, (_, i) => [i + 1, 'not text (binary data?): the line is not valid UTF-8']));
    for (const error of report.errors) {
      expect(error.excerpt).not.toMatch(/[\u0000-\u001f]/);
      expect(error.excerpt.length).toBeLessThanOrEqual(81);
    }
  });

  it('binary_garbage.jsonl read as lossy text still gives one error per line and no row', () => {
    const report = parseJsonl(readFileSync(path.join(DATA, 'bad/binary_garbage.jsonl'), 'utf8'));
    expect(report.rows).toEqual([]);
    expect(report.errors.map((e) => e.line)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });

  it('bom_crlf.jsonl: BOM and CRLF are invisible', () => {
    const report = importFile('bad/bom_crlf.jsonl');
    expect(report.rows).toEqual([
      { kind: 'text', text: 'starts with a BOM' },
      { kind: 'text', text: 'crlf line' },
    ]);
    expect(report.format).toBe('text');
    expect(report.errors).toEqual([]);
    expect(report.totalLines).toBe(2);
  });

  it('mixed_errors.jsonl: valid rows separated from specific errors', () => {
    const report = importFile('bad/mixed_errors.jsonl');
    expect(report.rows).toEqual([
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'ok' },
          { role: 'assistant', content: 'fine' },
        ],
      },
    ]);
    expect(report.format).toBe('messages');
    expect(report.formats).toEqual({ ...noFormats(), messages: 2 });
    expect(report.totalLines).toBe(9);
    expect(report.skippedBlank).toBe(1);
    const [broken, ...rest] = reasons(report);
    expect(broken[0]).toBe(2);
    expect(broken[1]).toMatch(/^broken JSON: \S/);
    expect(rest).toEqual([
      [3, 'empty "messages" list: a conversation needs at least a user and an assistant turn'],
      [4, 'message 1 has unknown role "wizard"; allowed roles: system, user, assistant'],
      [5, 'empty content in message 1 (user), message 2 (assistant)'],
      [6, '"text" must be a string, got number'],
      [7, 'not an object: the line is an array; each line must be one JSON object such as {"text": "..."}'],
    ]);
    expect(report.errors[0].excerpt).toBe('{"messages": [{"role":"user","content":"broken json"');
    expect(report.errors[5].excerpt).toBe('[1,2,3]');
  });

  it('prompt_completion.jsonl: one completion row', () => {
    const report = importFile('bad/prompt_completion.jsonl');
    expect(report.rows).toEqual([{ kind: 'completion', prompt: 'Q: 2+2?', completion: ' 4' }]);
    expect(report.format).toBe('prompt_completion');
    expect(report.errors).toEqual([]);
  });

  it('sharegpt.jsonl: one chat row with mapped roles', () => {
    const report = importFile('bad/sharegpt.jsonl');
    expect(report.rows).toEqual([
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello!' },
        ],
      },
    ]);
    expect(report.format).toBe('sharegpt');
    expect(report.errors).toEqual([]);
  });
});

describe('the shared good files', () => {
  it.each([
    ['zog_stories_train.jsonl', 24, 'text'],
    ['zog_stories_eval.jsonl', 6, 'text'],
    ['chat_rag_sample.jsonl', 31, 'messages'],
  ])('%s parses fully', (file, count, format) => {
    const report = importFile(file);
    expect(report.errors).toEqual([]);
    expect(report.rows).toHaveLength(count);
    expect(report.totalLines).toBe(count);
    expect(report.format).toBe(format);
    if (format === 'messages') {
      for (const row of report.rows) {
        expect(row.kind).toBe('chat');
        if (row.kind === 'chat') expect(row.messages[row.messages.length - 1].role).toBe('assistant');
      }
    }
  });
});

describe('parseJsonl', () => {
  const one = (line: string) => parseJsonl(line);
  const reasonOf = (line: string) => {
    const report = one(line);
    expect(report.rows).toEqual([]);
    expect(report.errors).toHaveLength(1);
    return report.errors[0].reason;
  };

  it('counts lines: trailing newline, blank and whitespace-only lines', () => {
    const report = parseJsonl('{"text":"a"}\n\n   \n{"text":"b"}\n');
    expect(report.totalLines).toBe(4);
    expect(report.skippedBlank).toBe(2);
    expect(report.rows).toHaveLength(2);
    expect(parseJsonl('')).toMatchObject({ totalLines: 0, rows: [], errors: [], format: null });
  });

  it('numbers error lines as an editor does, blank lines included', () => {
    const report = parseJsonl('\r\n{"text":"a"}\r\n\r\n{"text":1}\r\n');
    expect(reasons(report)).toEqual([[4, '"text" must be a string, got number']]);
  });

  it('reads each accepted shape', () => {
    const report = parseJsonl(
      [
        '{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"},{"role":"assistant","content":"A"}],"id":7}',
        '{"conversations":[{"from":"system","value":"S"},{"from":"user","value":"U"},{"from":"model","value":"A"},' +
          '{"from":"human","value":"U2"},{"from":"assistant","value":"A2"}]}',
        '{"instruction":"Translate","input":"chat","output":"cat"}',
        '{"instruction":"Say hi","input":null,"output":"Hi"}',
        '{"prompt":"","completion":"free text"}',
        '{"text":"plain"}',
      ].join('\n'),
    );
    expect(report.errors).toEqual([]);
    expect(report.rows).toEqual([
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: 'S' },
          { role: 'user', content: 'U' },
          { role: 'assistant', content: 'A' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: 'S' },
          { role: 'user', content: 'U' },
          { role: 'assistant', content: 'A' },
          { role: 'user', content: 'U2' },
          { role: 'assistant', content: 'A2' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Translate\n\nchat' },
          { role: 'assistant', content: 'cat' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Say hi' },
          { role: 'assistant', content: 'Hi' },
        ],
      },
      { kind: 'completion', prompt: '', completion: 'free text' },
      { kind: 'text', text: 'plain' },
    ]);
    expect(report.format).toBe('mixed');
    expect(report.formats).toEqual({ ...noFormats(), messages: 1, sharegpt: 1, alpaca: 2, prompt_completion: 1, text: 1 });
  });

  it('explains an unknown format with the keys found and the accepted shapes', () => {
    const reason = reasonOf('{"question":"q","answer":"a"}');
    expect(reason).toBe(
      'unknown format: found keys "question", "answer"; expected {"messages": [{"role", "content"}]}, ' +
        '{"request": {"messages"}, "response": {"choices"}}, {"chat": {"history"}}, ' +
        '{"conversations": [{"from", "value"}]}, {"instruction", "input"?, "output"}, {"prompt", "completion"} or {"text"}',
    );
    expect(reasonOf('{}')).toMatch(/^unknown format: found an empty object; expected /);
  });

  it('names wrong types and missing keys', () => {
    expect(reasonOf('"just a string"')).toBe(
      'not an object: the line is a string; each line must be one JSON object such as {"text": "..."}',
    );
    expect(reasonOf('null')).toMatch(/^not an object: the line is null;/);
    expect(reasonOf('{"messages":"hi"}')).toBe('"messages" must be a list, got string');
    expect(reasonOf('{"messages":["hi"]}')).toBe('message 1 must be an object with "role" and "content", got string');
    expect(reasonOf('{"messages":[{"role":"user","content":"a"},{"role":"assistant"}]}')).toBe('message 2: missing "content"');
    expect(reasonOf('{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}')).toBe(
      'message 1: "content" must be a string, got array',
    );
    expect(reasonOf('{"messages":[{"role":1,"content":"a"}]}')).toBe('message 1: "role" must be a string, got number');
    expect(reasonOf('{"conversations":{}}')).toBe('"conversations" must be a list, got object');
    expect(reasonOf('{"conversations":[{"from":"human","value":null}]}')).toBe('turn 1: "value" must be a string, got null');
    expect(reasonOf('{"instruction":"a"}')).toBe('missing "output"');
    expect(reasonOf('{"instruction":"a","input":3,"output":"b"}')).toBe('"input" must be a string, got number');
    expect(reasonOf('{"prompt":"a"}')).toBe('missing "completion"');
    expect(reasonOf('{"completion":"a"}')).toBe('missing "prompt"');
    expect(reasonOf('{"text":true}')).toBe('"text" must be a string, got boolean');
  });

  it('rejects empty content and conversations with nothing to train', () => {
    expect(reasonOf('{"text":"  "}')).toBe('empty "text"');
    expect(reasonOf('{"prompt":"a","completion":""}')).toBe('empty "completion": nothing to train on');
    expect(reasonOf('{"instruction":"","output":"b"}')).toBe('empty "instruction"');
    expect(reasonOf('{"instruction":"a","output":" "}')).toBe('empty "output": nothing to train on');
    expect(reasonOf('{"conversations":[]}')).toBe('empty "conversations" list: a conversation needs at least a user and an assistant turn');
    expect(reasonOf('{"conversations":[{"from":"human","value":"a"},{"from":"gpt","value":""}]}')).toBe(
      'empty content in turn 2 (assistant)',
    );
    expect(reasonOf('{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]}')).toBe(
      'no assistant turn, so nothing to train on (roles found: system, user)',
    );
  });

  it('names an unknown role and the allowed ones', () => {
    expect(reasonOf('{"messages":[{"role":"user","content":"a"},{"role":"tool","content":"b"}]}')).toBe(
      'message 2 has unknown role "tool"; allowed roles: system, user, assistant',
    );
    expect(reasonOf('{"messages":[{"role":"human","content":"a"}]}')).toMatch(/unknown role "human"/);
    expect(reasonOf('{"conversations":[{"from":"bing","value":"a"}]}')).toBe(
      'turn 1 has unknown "from" "bing"; allowed: human, user, gpt, assistant, model, system',
    );
    expect(reasonOf('{"conversations":[{"from":"toString","value":"a"}]}')).toMatch(/unknown "from" "toString"/);
  });

  it('reports control characters as binary data', () => {
    expect(reasonOf('{"text":"a\u0000b"}')).toBe('not text (binary data?): control character U+0000 at column 11');
  });

  it('uses the file name for hints', () => {
    expect(parseJsonl('PAR1\u0001\u0002', { fileName: 'train.parquet' }).errors[0].reason).toBe(
      'not text (binary data?): control character U+0001 at column 5; this looks like a Parquet file, export it as JSONL',
    );
    expect(parseJsonl('[', { fileName: 'data.JSON' }).errors[0].reason).toMatch(
      /^broken JSON: .+ \(a \.json file holds one document; JSONL needs one object per line\)$/,
    );
  });

  it('keeps excerpts short and printable', () => {
    const long = `{"text": ${'x'.repeat(200)}`;
    const error = parseJsonl(long).errors[0];
    expect(error.excerpt).toBe(`${long.slice(0, 80)}…`);
    expect(parseJsonl('{"a":\t1,\u0007}').errors[0].excerpt).toBe('{"a":\\t1,\\u0007}');
  });
});

describe('decodeJsonlBytes', () => {
  const utf8 = (s: string) => new TextEncoder().encode(s);

  it('decodes valid UTF-8 with nothing flagged', () => {
    expect(decodeJsonlBytes(utf8('{"text":"héllo 😀"}\n'))).toEqual({ text: '{"text":"héllo 😀"}\n', invalidLines: [] });
  });

  it('flags only the lines with invalid bytes', () => {
    const bytes = new Uint8Array([...utf8('{"text":"a"}\n'), 0xff, 0xfe, 0x41, 0x0a, ...utf8('{"text":"b"}')]);
    const decoded = decodeJsonlBytes(bytes);
    expect(decoded.invalidLines).toEqual([2]);
    expect(decoded.text).toBe('{"text":"a"}\n\ufffd\ufffdA\n{"text":"b"}');
    const report = parseJsonlBytes(bytes);
    expect(report.rows).toEqual([
      { kind: 'text', text: 'a' },
      { kind: 'text', text: 'b' },
    ]);
    expect(reasons(report)).toEqual([[2, 'not text (binary data?): the line is not valid UTF-8']]);
  });

  it('keeps a literal U+FFFD in valid UTF-8 as text', () => {
    expect(parseJsonlBytes(utf8('{"text":"\ufffd"}')).rows).toEqual([{ kind: 'text', text: '\ufffd' }]);
  });

  it('drops a UTF-8 BOM even when another line is invalid', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8('{"text":"a"}\n'), 0xc3]);
    const report = parseJsonlBytes(bytes);
    expect(report.rows).toEqual([{ kind: 'text', text: 'a' }]);
    expect(reasons(report)).toEqual([[2, 'not text (binary data?): the line is not valid UTF-8']]);
  });

  it('reads UTF-16 files by their byte-order mark', () => {
    const text = '{"text":"hé"}\r\n';
    const le = new Uint8Array(2 + text.length * 2);
    le.set([0xff, 0xfe]);
    const be = le.slice();
    be.set([0xfe, 0xff]);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      le[2 + 2 * i] = code & 0xff;
      le[3 + 2 * i] = code >> 8;
      be[2 + 2 * i] = code >> 8;
      be[3 + 2 * i] = code & 0xff;
    }
    for (const bytes of [le, be]) {
      expect(parseJsonlBytes(bytes)).toMatchObject({ rows: [{ kind: 'text', text: 'hé' }], errors: [] });
    }
  });
});

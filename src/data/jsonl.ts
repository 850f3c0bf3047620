/**
 * JSONL dataset import: one JSON object per line, each normalised into a DatasetRow.
 *
 * Accepted line shapes (keys are tried in this order; other keys such as "id" are ignored):
 *   {"request": {"messages"}, "response": {"choices"}} OpenAI-style exchange log (openai-log.ts; also
 *                                                     {"messages", "response"} and {"messages", "completion"})
 *   {"chat": {"history" | "messages"}}                one Open WebUI chat (open-webui.ts)
 *   {"messages": [{"role", "content"}, ...]}          roles system / user / assistant
 *   {"conversations": [{"from", "value"}, ...]}       ShareGPT: human|user, gpt|assistant|model, system
 *   {"instruction", "input"?, "output"}               Alpaca: user = instruction + "\n\n" + input
 *   {"prompt", "completion"}                          loss on the completion only
 *   {"text"}                                          loss on every token
 *
 * Nothing here throws on bad data: every line is either a row or a LineError with a reason a person
 * can act on, and the caller decides (the app shows the report, then stores the valid rows in one transaction or nothing).
 */
import { conversation, notString, roleContentMessages, typeName } from './conversation';
import { addRow, emptyReport, excerpt, type ImportReport, type LineError } from './import-report';
import { isOpenAiLog, openAiLogRow } from './openai-log';
import { isOpenWebUiChat, openWebUiChatRow } from './open-webui';
import { MAX_LINE_BYTES } from './line-reader';
import type { DatasetRow, Message, Role, SourceFormat } from './types';

export type { ImportReport, LineError };

export interface DecodedJsonl {
  text: string;
  /** 1-based numbers of the lines whose bytes are not valid UTF-8 (decoded with U+FFFD in their place). */
  invalidLines: number[];
}

const SHAREGPT_ROLES: Record<string, Role> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  model: 'assistant',
  system: 'system',
};

const ACCEPTED_SHAPES =
  '{"messages": [{"role", "content"}]}, {"request": {"messages"}, "response": {"choices"}}, {"chat": {"history"}}, ' +
  '{"conversations": [{"from", "value"}]}, ' +
  '{"instruction", "input"?, "output"}, {"prompt", "completion"} or {"text"}';

/** Raw C0 controls other than tab and carriage return never occur in a JSON text line, but do in binary data. */
const CONTROL_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/** Extensions of binary files people pick by mistake, named in the reason so they know to export JSONL. */
const BINARY_FORMATS: Record<string, string> = {
  parquet: 'Parquet',
  arrow: 'Arrow',
  gz: 'gzip',
  zip: 'zip',
  xlsx: 'Excel',
};

/**
 * Decodes a file's bytes without failing on bad ones: each line that is not valid UTF-8 is listed so
 * that parseJsonl can report it as binary instead of as confusing JSON errors. UTF-16 files (what
 * Windows PowerShell writes by default) are recognised by their byte-order mark.
 */
export function decodeJsonlBytes(bytes: Uint8Array): DecodedJsonl {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return { text: new TextDecoder('utf-16le').decode(bytes), invalidLines: [] };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return { text: new TextDecoder('utf-16be').decode(bytes), invalidLines: [] };
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), invalidLines: [] };
  } catch {
    // Some bytes are bad: find which lines, decoding each one on its own.
  }
  const strict = new TextDecoder('utf-8', { fatal: true });
  const lenient = new TextDecoder('utf-8');
  const parts: string[] = [];
  const invalidLines: number[] = [];
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const chunk = bytes.subarray(start, end);
    try {
      parts.push(strict.decode(chunk));
    } catch {
      invalidLines.push(line);
      parts.push(lenient.decode(chunk));
    }
    start = end + 1;
  }
  return { text: parts.join('\n'), invalidLines };
}

/** decodeJsonlBytes then parseJsonl: what the app does with a dropped file. */
export function parseJsonlBytes(bytes: Uint8Array, opts: { fileName?: string } = {}): ImportReport {
  const { text, invalidLines } = decodeJsonlBytes(bytes);
  return parseJsonl(text, { ...opts, invalidLines });
}

/** `invalidLines` comes from decodeJsonlBytes; without it, binary lines are still caught by their control characters. */
export function parseJsonl(text: string, opts: { fileName?: string; invalidLines?: readonly number[] } = {}): ImportReport {
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const invalid = new Set(opts.invalidLines ?? []);
  const extension = fileExtension(opts.fileName);
  const report = emptyReport(lines.length);
  lines.forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      report.skippedBlank++;
      return;
    }
    const result = parseLine(line, invalid.has(index + 1), extension);
    if (typeof result === 'string') {
      report.errors.push({ line: index + 1, reason: result, excerpt: excerpt(line) });
    } else {
      addRow(report, result.row, result.format);
    }
  });
  return report;
}

export type LineResult = { row: DatasetRow; format: SourceFormat } | string;

/** The lower-case extension of a file name ('' without one), which some reasons name. */
export function fileExtension(fileName: string | undefined): string {
  return fileName?.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1] ?? '';
}

/**
 * One line of a streamed file (src/data/line-reader.ts): blank lines are the caller's to skip; a
 * line too long to be a row is refused by its length without being parsed.
 */
export function parseJsonlLine(line: { text: string; invalidUtf8: boolean; tooLongBytes: number | null }, extension: string): LineResult {
  if (line.tooLongBytes !== null) {
    return (
      `too long: the line is ${(line.tooLongBytes / 2 ** 20).toFixed(1)} MiB, more than the ${MAX_LINE_BYTES / 2 ** 20} MiB ` +
      'one row may have; split it into several rows (one JSON object per line)'
    );
  }
  const text = line.text.endsWith('\r') ? line.text.slice(0, -1) : line.text;
  return parseLine(text, line.invalidUtf8, extension);
}

/** ASCII text saved as UTF-16 and read as UTF-8: a NUL after (or before) every character. */
const UTF16_AS_UTF8 = /^(?:[\u0001-\u007f]\u0000){2}|^(?:\u0000[\u0001-\u007f]){2}/;

function parseLine(line: string, invalidUtf8: boolean, extension: string): LineResult {
  const binaryHint = Object.hasOwn(BINARY_FORMATS, extension)
    ? `; this looks like a ${BINARY_FORMATS[extension]} file, export it as JSONL`
    : '';
  if (invalidUtf8) return `not text (binary data?): the line is not valid UTF-8${binaryHint}`;
  if (UTF16_AS_UTF8.test(line)) {
    return (
      'not UTF-8: the line is UTF-16 text (a zero byte beside every character) in a file that does not start as UTF-16; ' +
      'save the file as UTF-8'
    );
  }
  const control = CONTROL_CHAR.exec(line);
  if (control) {
    return `not text (binary data?): control character ${codePoint(control[0])} at column ${control.index + 1}${binaryHint}`;
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    const jsonHint = extension === 'json' ? ' (a .json file holds one document; JSONL needs one object per line)' : '';
    return `broken JSON: ${(err as Error).message}${jsonHint}`;
  }
  return rowFromValue(value, 'line');
}

/**
 * One parsed JSON value (a JSONL line, an entry of a JSON list, a Parquet row) as a row in one of
 * the accepted shapes, or why not; `what` names the unit in the message.
 */
export function rowFromValue(value: unknown, what: 'line' | 'entry' | 'row'): LineResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    return `not an object: the ${what} is ${got}; each ${what} must be one JSON object such as {"text": "..."}`;
  }
  const obj = value as Record<string, unknown>;
  if (isOpenAiLog(obj)) return withFormat(openAiLogRow(obj), 'openai_log');
  if (isOpenWebUiChat(obj)) return withFormat(openWebUiChatRow(obj), 'open_webui');
  if ('messages' in obj) return withFormat(messagesRow(obj.messages), 'messages');
  if ('conversations' in obj) return withFormat(shareGptRow(obj.conversations), 'sharegpt');
  if ('instruction' in obj) return withFormat(alpacaRow(obj), 'alpaca');
  if ('prompt' in obj || 'completion' in obj) return withFormat(promptCompletionRow(obj), 'prompt_completion');
  if ('text' in obj) return withFormat(textRow(obj.text), 'text');
  const keys = Object.keys(obj);
  const found = keys.length === 0 ? 'an empty object' : `keys ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
  return `unknown format: found ${found}; expected ${ACCEPTED_SHAPES}`;
}

function withFormat(result: DatasetRow | string, format: SourceFormat): LineResult {
  return typeof result === 'string' ? result : { row: result, format };
}

function messagesRow(list: unknown): DatasetRow | string {
  const messages = roleContentMessages(list, 'messages', (i) => `message ${i + 1}`);
  return typeof messages === 'string' ? messages : conversation(messages, 'messages', 'message');
}

function shareGptRow(list: unknown): DatasetRow | string {
  if (!Array.isArray(list)) return `"conversations" must be a list, got ${typeName(list)}`;
  const messages: Message[] = [];
  for (const [i, item] of list.entries()) {
    const where = `turn ${i + 1}`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      return `${where} must be an object with "from" and "value", got ${typeName(item)}`;
    }
    const { from, value } = item as { from?: unknown; value?: unknown };
    if (typeof from !== 'string') return `${where}: ${notString('from', from)}`;
    const role = Object.hasOwn(SHAREGPT_ROLES, from) ? SHAREGPT_ROLES[from] : undefined;
    if (!role) {
      return `${where} has unknown "from" ${JSON.stringify(from)}; allowed: ${Object.keys(SHAREGPT_ROLES).join(', ')}`;
    }
    if (typeof value !== 'string') return `${where}: ${notString('value', value)}`;
    messages.push({ role, content: value });
  }
  return conversation(messages, 'conversations', 'turn');
}

function alpacaRow(obj: Record<string, unknown>): DatasetRow | string {
  const { instruction, input, output } = obj;
  if (typeof instruction !== 'string') return notString('instruction', instruction);
  if (input !== undefined && input !== null && typeof input !== 'string') return notString('input', input);
  if (typeof output !== 'string') return notString('output', output);
  if (instruction.trim() === '') return 'empty "instruction"';
  if (output.trim() === '') return 'empty "output": nothing to train on';
  const user = input ? `${instruction}\n\n${input}` : instruction;
  return {
    kind: 'chat',
    messages: [
      { role: 'user', content: user },
      { role: 'assistant', content: output },
    ],
  };
}

/** An empty prompt is allowed (unconditional generation); an empty completion leaves nothing to train. */
function promptCompletionRow(obj: Record<string, unknown>): DatasetRow | string {
  const { prompt, completion } = obj;
  if (typeof prompt !== 'string') return notString('prompt', prompt);
  if (typeof completion !== 'string') return notString('completion', completion);
  if (completion.trim() === '') return 'empty "completion": nothing to train on';
  return { kind: 'completion', prompt, completion };
}

function textRow(text: unknown): DatasetRow | string {
  if (typeof text !== 'string') return notString('text', text);
  if (text.trim() === '') return 'empty "text"';
  return { kind: 'text', text };
}

function codePoint(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Open WebUI's chat export (Settings > Chats > Export Chats): one JSON file holding a list of
 * chats, as Open WebUI's own importer reads it. Each entry is either
 *
 *   {"id", "title", "chat": {...}, "created_at", ...}   the current export
 *   {...}                                               the chat object itself (older exports)
 *
 * and the chat object holds the conversation as
 *
 *   "history": {"currentId", "messages": {"<id>": {"id", "parentId", "role", "content", ...}}}
 *   "messages": [{"role", "content", ...}, ...]
 *
 * The history is a tree (regenerated replies and edits are branches); the conversation is the
 * branch the user last saw, from history.currentId up its parentId chain. Without a history the
 * flat "messages" list is taken as it is. A system prompt in chat.params.system (or chat.system)
 * becomes the system message. Open WebUI keeps collapsible extras in the reply text as
 * `<details type="reasoning">...</details>` (also tool calls, code interpreter runs); those blocks
 * are not the answer and are removed.
 *
 * Retrieved sources: Open WebUI stores them on the assistant message ("sources", earlier
 * "citations": [{"source": {"id", "name"}, "document": [text, ...], "metadata": [{"source"}, ...]}])
 * and numbers them for the model as its backend does: one number per distinct metadata source (or
 * source id), in order of appearance. The sources of the last assistant message that has any
 * become the row's `Context:` block in webtune's format (src/rag/context.ts), with those numbers,
 * so its `[n]` citations keep pointing at the right source and the row is a RAG row.
 */
import { ContextFormatError, formatSources, type SourceEntry } from '../rag/context';
import { conversation, isRecord, roleContentMessages, typeName } from './conversation';
import { addRow, emptyReport, excerpt, type ImportReport } from './import-report';
import type { DatasetRow, Message } from './types';

const DETAILS_BLOCK = /<details\s+type="[^"]*"[^>]*>[\s\S]*?<\/details>\s*/gi;

/** A JSONL line (or list entry) that is an Open WebUI chat rather than one of the JSONL formats. */
export function isOpenWebUiChat(obj: Record<string, unknown>): boolean {
  return isRecord(obj.chat);
}

function branch(history: Record<string, unknown>): unknown[] | string {
  const { messages, currentId } = history;
  if (!isRecord(messages)) return `"chat.history.messages" must be an object of messages by id, got ${typeName(messages)}`;
  if (typeof currentId !== 'string') return `"chat.history.currentId" must be a message id, got ${typeName(currentId)}`;
  const path: unknown[] = [];
  const seen = new Set<string>();
  let id: unknown = currentId;
  while (typeof id === 'string') {
    if (seen.has(id)) return `"chat.history" loops back to message ${JSON.stringify(id)}`;
    seen.add(id);
    const message = Object.hasOwn(messages, id) ? messages[id] : undefined;
    if (!isRecord(message)) return `"chat.history.messages" has no message ${JSON.stringify(id)} (named by currentId or a parentId)`;
    path.unshift(message);
    id = message.parentId;
  }
  return path;
}

/** Open WebUI's numbering: one number per distinct metadata source (or source id), texts of the same number joined. */
function sourceEntries(sources: unknown[]): SourceEntry[] {
  const byKey = new Map<string, SourceEntry>();
  for (const source of sources) {
    if (!isRecord(source) || !Array.isArray(source.document)) continue;
    const info = isRecord(source.source) ? source.source : {};
    const metadata = Array.isArray(source.metadata) ? source.metadata : [];
    source.document.forEach((text, i) => {
      if (typeof text !== 'string' || i >= metadata.length) return;
      const meta = isRecord(metadata[i]) ? metadata[i] : {};
      const key = String(meta.source || info.id || 'N/A');
      const existing = byKey.get(key);
      if (existing) existing.text += ` ${text}`;
      else byKey.set(key, { text, label: typeof info.name === 'string' ? info.name : null });
    });
  }
  return [...byKey.values()].filter((e) => e.text.trim() !== '');
}

function retrievedSources(raw: unknown[]): unknown[] | null {
  for (let i = raw.length - 1; i >= 0; i--) {
    const m = raw[i];
    if (!isRecord(m) || m.role !== 'assistant') continue;
    const sources = Array.isArray(m.sources) ? m.sources : Array.isArray(m.citations) ? m.citations : null;
    if (sources && sources.length > 0) return sources;
  }
  return null;
}

export function openWebUiChatRow(entry: unknown): DatasetRow | string {
  if (!isRecord(entry)) return `each chat must be an object, got ${typeName(entry)}`;
  const chat = isRecord(entry.chat) ? entry.chat : entry;
  let raw: unknown[] | string;
  if (isRecord(chat.history) && chat.history.currentId !== undefined) raw = branch(chat.history);
  else if (Array.isArray(chat.messages)) raw = chat.messages;
  else return 'no conversation: expected "chat.history" (with "currentId" and "messages") or a "chat.messages" list';
  if (typeof raw === 'string') return raw;

  const read = roleContentMessages(raw, 'chat.messages', (i) => `message ${i + 1}`);
  if (typeof read === 'string') return read;
  const messages: Message[] = read.map((m) =>
    m.role === 'assistant' ? { ...m, content: m.content.replace(DETAILS_BLOCK, '').trim() } : m,
  );
  const params = isRecord(chat.params) ? chat.params : {};
  const prompt = [params.system, chat.system].find((s): s is string => typeof s === 'string' && s.trim() !== '');
  const ownSystem = messages[0]?.role === 'system' ? messages.shift()!.content : prompt;
  const sources = retrievedSources(raw);
  let system = ownSystem;
  if (sources) {
    try {
      system = formatSources(sourceEntries(sources), { systemPrompt: ownSystem })?.system ?? ownSystem;
    } catch (err) {
      if (err instanceof ContextFormatError)
        return `the chat's system prompt has a "Context:" line, so its retrieved sources cannot be added; ${err.message}`;
      throw err;
    }
  }
  const all = system === undefined ? messages : [{ role: 'system' as const, content: system }, ...messages];
  return conversation(all, 'chat.messages', 'message');
}

/** The line on which each element of a top-level JSON array starts; the text must be valid JSON. */
export function arrayEntryLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let expectEntry = false;
  for (const ch of text) {
    if (ch === '\n') line++;
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (/\s/.test(ch)) continue;
    if (depth === 1 && expectEntry && ch !== ']') {
      lines.push(line);
      expectEntry = false;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') depth--;
    if ((ch === '[' && depth === 1) || (ch === ',' && depth === 1)) expectEntry = true;
  }
  return lines;
}

const entryExcerpt = (entry: unknown) =>
  excerpt(isRecord(entry) && typeof entry.title === 'string' ? `title: ${entry.title}` : (JSON.stringify(entry) ?? String(entry)));

/** The chats of an export (the parsed list and the file's text, for line numbers). */
export function parseOpenWebUiExport(chats: unknown[], text: string): ImportReport {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const report = emptyReport(lines.length);
  report.totalEntries = chats.length;
  const starts = arrayEntryLines(text);
  chats.forEach((entry, i) => {
    const row = openWebUiChatRow(entry);
    if (typeof row === 'string') report.errors.push({ line: starts[i] ?? 1, entry: i + 1, reason: row, excerpt: entryExcerpt(entry) });
    else addRow(report, row, 'open_webui');
  });
  return report;
}

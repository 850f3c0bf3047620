/**
 * Checks shared by the conversation formats of every import (JSONL messages and ShareGPT,
 * OpenAI-style logs, Open WebUI exports). Each returns the checked value or, for bad data, a
 * reason a person can act on; nothing throws.
 */
import type { DatasetRow, Message, Role } from './types';

export const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

export function notString(key: string, value: unknown): string {
  return value === undefined ? `missing "${key}"` : `"${key}" must be a string, got ${typeName(value)}`;
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `{"role", "content"}` objects with string content and one of ROLES; `where(i)` names item i in a reason. */
export function roleContentMessages(list: unknown, key: string, where: (i: number) => string): Message[] | string {
  if (!Array.isArray(list)) return `"${key}" must be a list, got ${typeName(list)}`;
  const messages: Message[] = [];
  for (const [i, item] of list.entries()) {
    if (!isRecord(item)) return `${where(i)} must be an object with "role" and "content", got ${typeName(item)}`;
    const { role, content } = item;
    if (typeof role !== 'string') return `${where(i)}: ${notString('role', role)}`;
    if (!(ROLES as readonly string[]).includes(role)) {
      return `${where(i)} has unknown role ${JSON.stringify(role)}; allowed roles: ${ROLES.join(', ')}`;
    }
    if (typeof content !== 'string') return `${where(i)}: ${notString('content', content)}`;
    messages.push({ role: role as Role, content });
  }
  return messages;
}

/** Checks every conversation format shares, after each message is known to be well typed. */
export function conversation(messages: Message[], key: string, noun: string): DatasetRow | string {
  if (messages.length === 0) return `empty "${key}" list: a conversation needs at least a user and an assistant turn`;
  const empty = messages.flatMap((m, i) => (m.content.trim() === '' ? [`${noun} ${i + 1} (${m.role})`] : []));
  if (empty.length > 0) return `empty content in ${empty.join(', ')}`;
  if (!messages.some((m) => m.role === 'assistant')) {
    return `no assistant turn, so nothing to train on (roles found: ${[...new Set(messages.map((m) => m.role))].join(', ')})`;
  }
  return { kind: 'chat', messages };
}

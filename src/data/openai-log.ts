/**
 * OpenAI-style chat-completion logs, one exchange per JSONL line: the request's messages followed
 * by the response's message. Accepted shapes (the README, "Importing conversation logs", has examples):
 *
 *   {"request": {"messages": [...]}, "response": R}     what logging proxies and gateways write
 *   {"messages": [...], "response": R}
 *   {"messages": [...], "completion": R}
 *
 * where R is a chat completion `{"choices": [{"message": {"role": "assistant", "content"}}]}`
 * (the first choice is taken), a bare message `{"role": "assistant", "content"}`, or the reply
 * text as a string. Request messages follow the Chat Completions API: content is a string or a
 * list of `{"type": "text", "text"}` parts (joined with line breaks), and role "developer" is the
 * system message. Tool calls, tool results, images and audio cannot be trained as text, so a line
 * with them is refused with the reason, as is a logged error response.
 */
import { conversation, isRecord, notString, ROLES, typeName } from './conversation';
import type { DatasetRow, Message, Role } from './types';

/** The keys that make a line an exchange log rather than plain `messages`. */
export function isOpenAiLog(obj: Record<string, unknown>): boolean {
  return 'request' in obj || ('messages' in obj && ('response' in obj || 'completion' in obj));
}

const ROLE_ALIASES: Record<string, Role> = { developer: 'system' };

type Read<T> = { value: T } | { error: string };

function content(value: unknown, where: string): Read<string> {
  if (typeof value === 'string') return { value };
  if (value === null || value === undefined) return { error: `${where} has no text content${value === null ? ' (a tool call?)' : ''}` };
  if (!Array.isArray(value)) return { error: `${where}: "content" must be a string or a list of text parts, got ${typeName(value)}` };
  const texts: string[] = [];
  for (const [i, part] of value.entries()) {
    if (!isRecord(part)) return { error: `${where}, content part ${i + 1}: must be an object such as {"type": "text", "text": "..."}` };
    if (part.type !== 'text') return { error: `${where} has a ${JSON.stringify(part.type)} content part; only text parts can be trained` };
    if (typeof part.text !== 'string') return { error: `${where}, content part ${i + 1}: ${notString('text', part.text)}` };
    texts.push(part.text);
  }
  return { value: texts.join('\n') };
}

function readMessage(item: unknown, where: string, defaultRole?: Role): Read<Message> {
  if (!isRecord(item)) return { error: `${where} must be an object with "role" and "content", got ${typeName(item)}` };
  const rawRole = item.role ?? defaultRole;
  if (typeof rawRole !== 'string') return { error: `${where}: ${notString('role', rawRole)}` };
  if (rawRole === 'tool' || rawRole === 'function') {
    return { error: `${where} is a ${rawRole} result; tool calls cannot be trained as text, so export the exchanges without tools` };
  }
  const role = Object.hasOwn(ROLE_ALIASES, rawRole) ? ROLE_ALIASES[rawRole] : (rawRole as Role);
  if (!ROLES.includes(role))
    return { error: `${where} has unknown role ${JSON.stringify(rawRole)}; allowed roles: ${ROLES.join(', ')}, developer` };
  if (Array.isArray(item.tool_calls) && item.tool_calls.length > 0) {
    return { error: `${where} makes tool calls; tool calls cannot be trained as text, so export the exchanges without tools` };
  }
  const text = content(item.content, where);
  return 'error' in text ? text : { value: { role, content: text.value } };
}

function responseMessage(response: unknown, key: string): Read<Message> {
  if (typeof response === 'string') return { value: { role: 'assistant', content: response } };
  if (!isRecord(response)) return { error: `"${key}" must be a chat completion, a message or a string, got ${typeName(response)}` };
  if ('error' in response && !('choices' in response)) {
    const message = isRecord(response.error) && typeof response.error.message === 'string' ? `: ${response.error.message}` : '';
    return { error: `the logged response is an error${message}; there is no reply to train on` };
  }
  if ('choices' in response) {
    const { choices } = response;
    if (!Array.isArray(choices)) return { error: `"${key}.choices" must be a list, got ${typeName(choices)}` };
    if (choices.length === 0) return { error: `"${key}.choices" is empty: the response holds no reply` };
    const first = choices[0];
    if (!isRecord(first) || !('message' in first))
      return { error: `"${key}.choices[0]" has no "message" (a streamed or legacy completion?)` };
    return checkAssistant(readMessage(first.message, `${key}.choices[0].message`, 'assistant'), `${key}.choices[0].message`);
  }
  return checkAssistant(readMessage(response, `"${key}"`, 'assistant'), `"${key}"`);
}

function checkAssistant(read: Read<Message>, where: string): Read<Message> {
  if ('value' in read && read.value.role !== 'assistant')
    return { error: `${where} has role "${read.value.role}"; the reply must be the assistant's` };
  return read;
}

export function openAiLogRow(obj: Record<string, unknown>): DatasetRow | string {
  let list: unknown;
  let listKey = 'messages';
  if ('request' in obj) {
    if (!isRecord(obj.request)) return `"request" must be an object with "messages", got ${typeName(obj.request)}`;
    list = obj.request.messages;
    listKey = 'request.messages';
  } else {
    list = obj.messages;
  }
  if (list === undefined) return `missing "${listKey}"`;
  if (!Array.isArray(list)) return `"${listKey}" must be a list, got ${typeName(list)}`;
  if (list.length === 0) return `empty "${listKey}" list: the request needs at least the user's turn`;
  const responseKey = 'response' in obj ? 'response' : 'completion';
  if (!(responseKey in obj)) return 'missing "response": the log line needs the reply as well as the request';
  const messages: Message[] = [];
  for (const [i, item] of list.entries()) {
    const read = readMessage(item, `message ${i + 1}`);
    if ('error' in read) return read.error;
    messages.push(read.value);
  }
  const reply = responseMessage(obj[responseKey], responseKey);
  if ('error' in reply) return reply.error;
  return conversation([...messages, reply.value], listKey, 'message');
}

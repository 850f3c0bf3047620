import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DatasetRow, Message } from '../../src/data/types';

export const SAMPLE_PATH = path.resolve(__dirname, '../../../shared/data/chat_rag_sample.jsonl');

/** The importer is someone else's work; these tests read the `messages` lines directly. */
export function loadSample(): DatasetRow[] {
  return readFileSync(SAMPLE_PATH, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => ({ kind: 'chat', messages: (JSON.parse(line) as { messages: Message[] }).messages }));
}

export const chat = (...turns: [Message['role'], string][]): DatasetRow => ({
  kind: 'chat',
  messages: turns.map(([role, content]) => ({ role, content })),
});

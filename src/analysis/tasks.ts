import type { DatasetRow, Message } from '../data/types';

/** The task types a conversation is scored for. The order is the tie-break for the primary task: more specific first. */
export const TASK_IDS = ['rag_enhanced', 'code_generation', 'technical_implementation', 'ai_ml_education', 'conversational_chat'] as const;
export type TaskId = (typeof TASK_IDS)[number];

/**
 * Every row kind seen as a conversation, so one set of rules scores them all: a completion's
 * prompt is the user's turn and its completion the response; plain text has no prompt, and all of
 * it is what the model learns to produce.
 */
export function rowMessages(row: DatasetRow): Message[] {
  switch (row.kind) {
    case 'chat':
      return row.messages;
    case 'completion':
      return [
        { role: 'user', content: row.prompt },
        { role: 'assistant', content: row.completion },
      ];
    case 'text':
      return [{ role: 'assistant', content: row.text }];
  }
}

/** Dataset rows after import: every accepted JSONL format is normalised into one of these. */

export type Role = 'system' | 'user' | 'assistant';

export interface Message {
  role: Role;
  content: string;
}

export type DatasetRow =
  /** Conversations (`messages`, ShareGPT `conversations`, Alpaca): rendered with the chat template, loss on assistant turns. */
  | { kind: 'chat'; messages: Message[] }
  /** `{prompt, completion}`: plain text, loss on the completion (and the end-of-sequence token). */
  | { kind: 'completion'; prompt: string; completion: string }
  /** `{text}`: plain text, loss on every token. */
  | { kind: 'text'; text: string };

/** The formats an import recognises, in the order they are reported. */
export const SOURCE_FORMATS = ['messages', 'sharegpt', 'alpaca', 'prompt_completion', 'text', 'openai_log', 'open_webui'] as const;
export type SourceFormat = (typeof SOURCE_FORMATS)[number];

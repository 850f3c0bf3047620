/**
 * Chat templates: conversations become text through the model's own `chat_template` (Jinja, from
 * tokenizer_config.json), rendered with @huggingface/jinja the way transformers'
 * `apply_chat_template` does: variables `messages`, `bos_token`, `eos_token`,
 * `add_generation_prompt`. The rendered text already holds every special token the template wants,
 * so it is tokenized with `addSpecialTokens: false` (as transformers does).
 *
 * Models without a template (base models such as stories260K) get DEFAULT_CHAT_TEMPLATE, plain
 * text with no invented special tokens, because a base model has never seen markers like
 * `<|user|>` as single tokens and would only learn them as noise:
 *
 *     <bos>System: {system}
 *
 *     User: {user}
 *
 *     Assistant: {assistant}<eos>
 *
 * Turns are separated by a blank line; each assistant turn ends with the EOS token so the model
 * learns to stop; the generation prompt is `Assistant:` (no trailing space: the space then starts
 * the reply's first token, as it does in training).
 *
 * A template is someone else's code: it renders through bounded-jinja.ts, which keeps it away
 * from JavaScript objects and stops it at TEMPLATE_LIMITS (steps, time, sizes) with
 * ChatTemplateLimitError, in the page's worker and in Node alike.
 */
import { BoundedTemplate, type TemplateLimit, TemplateLimitError, type TemplateLimits, TEMPLATE_LIMITS } from './bounded-jinja';
import type { Message } from './types';

export { TEMPLATE_LIMITS, type TemplateLimits } from './bounded-jinja';

export const DEFAULT_CHAT_TEMPLATE = [
  "{{- bos_token or '' -}}",
  '{%- for message in messages -%}',
  "  {%- if not loop.first %}{{ '\\n\\n' }}{% endif -%}",
  '  {{- message.role | capitalize }}: {{ message.content -}}',
  "  {%- if message.role == 'assistant' %}{{ eos_token or '' }}{% endif -%}",
  '{%- endfor -%}',
  "{%- if add_generation_prompt %}{{ '\\n\\nAssistant:' if messages else 'Assistant:' }}{% endif -%}",
].join('\n');

export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}

/** A chat template stopped at one of TEMPLATE_LIMITS: it loops forever, or builds something absurdly large. */
export class ChatTemplateLimitError extends ChatTemplateError {
  override name = 'ChatTemplateLimitError';
  constructor(
    readonly limit: TemplateLimit,
    reason: string,
  ) {
    const data = limit === 'string size' || limit === 'list size' ? ', or shorten this conversation if it is that long' : '';
    super(`the model's chat_template was stopped: ${reason}. Fix "chat_template" in tokenizer_config.json${data}.`);
  }
}

const limitError = (err: TemplateLimitError) => new ChatTemplateLimitError(err.limit, err.message);

/** A message the template raised can be as long as the template makes it. */
const shorten = (text: string) => (text.length > 500 ? `${text.slice(0, 500)}…` : text);

/** What rendering needs from tokenizer_config.json. */
export interface ChatSettings {
  /** The model's template, or null to use DEFAULT_CHAT_TEMPLATE. */
  chatTemplate: string | null;
  bosToken: string | null;
  eosToken: string | null;
}

export interface ChatRenderer {
  render(messages: readonly Message[], opts?: { addGenerationPrompt?: boolean }): string;
}

export function chatSettingsFromConfig(tokenizerConfig: Record<string, unknown>): ChatSettings {
  return {
    chatTemplate: chatTemplateFromConfig(tokenizerConfig),
    bosToken: specialTokenText(tokenizerConfig.bos_token),
    eosToken: specialTokenText(tokenizerConfig.eos_token),
  };
}

/**
 * `chat_template` is a string, or (models with tool-use or RAG variants) a list of `{name, template}`
 * from which transformers takes the one named "default".
 */
export function chatTemplateFromConfig(tokenizerConfig: Record<string, unknown>): string | null {
  const value = tokenizerConfig.chat_template;
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value.filter(
      (t): t is { name: string; template: string } => typeof t?.name === 'string' && typeof t?.template === 'string',
    );
    const chosen = named.find((t) => t.name === 'default');
    if (chosen) return chosen.template;
    throw new ChatTemplateError(
      `tokenizer_config.json lists chat templates (${named.map((t) => t.name).join(', ') || 'none readable'}) but none named "default"; ` +
        'set "chat_template" to the one to train with.',
    );
  }
  throw new ChatTemplateError('"chat_template" in tokenizer_config.json must be a string or a list of {name, template}.');
}

/** Parses the template once; render() is then cheap enough to call once per conversation prefix. */
export function chatRenderer(settings: ChatSettings, limits: TemplateLimits = TEMPLATE_LIMITS): ChatRenderer {
  let template: BoundedTemplate;
  try {
    template = new BoundedTemplate(settings.chatTemplate ?? DEFAULT_CHAT_TEMPLATE, limits);
  } catch (err) {
    if (err instanceof TemplateLimitError) throw limitError(err);
    throw new ChatTemplateError(`the model's chat_template could not be parsed (${shorten((err as Error).message)}).`);
  }
  return {
    render(messages, opts = {}) {
      try {
        return template.render({
          messages,
          bos_token: settings.bosToken ?? undefined,
          eos_token: settings.eosToken ?? undefined,
          add_generation_prompt: opts.addGenerationPrompt ?? false,
        });
      } catch (err) {
        if (err instanceof TemplateLimitError) throw limitError(err);
        throw new ChatTemplateError(`the chat template refused the conversation: ${shorten((err as Error).message)}`);
      }
    },
  };
}

/** tokenizer_config.json writes special tokens as strings or as serialised AddedToken objects. */
function specialTokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

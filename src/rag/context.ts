/**
 * Retrieved passages as the system message of a chat turn, in the one format the task analysis
 * (src/analysis/signals.ts, `rag.context_block`) and the RAG metrics (src/eval/rag-metrics.ts,
 * extractContext) read:
 *
 *     <system prompt, if any>
 *
 *     Answer from the numbered sources in the context below and cite each source you use as [n].
 *
 *     Context:
 *     [1] (pricing.md > Plans) The Team plan costs 10 euros per seat and month.
 *     [2] (faq.html) Refunds are issued within 5 days.
 *
 * Each source is one line: the metrics read a source as the lines from `[n]` up to the next `[m]`
 * line or a blank line, so a passage's own line breaks and blank lines are collapsed into spaces,
 * which also keeps a passage line that starts with "[3]" or "Context:" from being read as a source
 * or a context block of its own. The label in parentheses is the document and its section; the
 * sources come last, so nothing after them is read as part of the last source.
 */
import { citedSources, extractContext } from '../eval/rag-metrics';
import type { Passage } from './passages';

export const CONTEXT_INSTRUCTION = 'Answer from the numbered sources in the context below and cite each source you use as [n].';

export interface ContextSource {
  /** The number the model cites, from 1. */
  id: number;
  text: string;
  /**
   * The label given in parentheses (document > section); null when the source has none. Parentheses
   * are removed from it, so that it reads back.
   */
  label: string | null;
  /** The passage it came from (only when formatted here). */
  passageId?: string;
}

export interface FormattedContext {
  system: string;
  sources: ContextSource[];
}

/** A system prompt that already holds a `Context:` line would hide the sources from the metrics. */
export class ContextFormatError extends Error {
  override name = 'ContextFormatError';
}

const CONTEXT_LINE = /^[ \t]*context[ \t]*:/im;
const LABEL = /^\(([^()]*)\)[ \t]+/;

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

export interface SourceEntry {
  text: string;
  label: string | null;
  passageId?: string;
}

/**
 * The system message for numbered sources (in rank order, numbered from 1), or null when there
 * are none: without sources a turn is an ordinary chat turn.
 */
export function formatSources(
  entries: SourceEntry[],
  options: { systemPrompt?: string; instruction?: string } = {},
): FormattedContext | null {
  if (entries.length === 0) return null;
  const systemPrompt = options.systemPrompt?.trim() ?? '';
  if (CONTEXT_LINE.test(systemPrompt)) {
    throw new ContextFormatError(
      'The system prompt has a line starting with "Context:"; reword that line, the retrieved sources go there.',
    );
  }
  const sources: ContextSource[] = entries.map((e, i) => {
    const label = e.label === null ? '' : oneLine(e.label).replace(/[()]/g, '');
    return { id: i + 1, text: oneLine(e.text), label: label || null, ...(e.passageId === undefined ? {} : { passageId: e.passageId }) };
  });
  const lines = sources.map((s) => `[${s.id}] ${s.label ? `(${s.label}) ` : ''}${s.text}`);
  const head = [systemPrompt, options.instruction ?? CONTEXT_INSTRUCTION].filter((s) => s !== '').join('\n\n');
  return { system: `${head}\n\nContext:\n${lines.join('\n')}`, sources };
}

/** The system message for retrieved passages (best first): formatSources labelled with each passage's document and section. */
export function formatContext(passages: Passage[], options: { systemPrompt?: string; instruction?: string } = {}): FormattedContext | null {
  const label = (p: Passage) => [p.document, p.heading].filter((s) => s !== '').join(' > ');
  return formatSources(
    passages.map((p) => ({ text: p.text, label: label(p), passageId: p.id })),
    options,
  );
}

/** The numbered sources of a system message, as the metrics read them, with our label split off; null without a `Context:` block. */
export function parseContext(system: string): ContextSource[] | null {
  const context = extractContext(system);
  if (!context) return null;
  return context.sources.map((s) => {
    const label = LABEL.exec(s.text);
    return label ? { id: s.id, label: label[1], text: s.text.slice(label[0].length) } : { id: s.id, label: null, text: s.text };
  });
}

export interface CitationCheck {
  /** Every `[n]` the reply cites (outside code), in order of first appearance. */
  cited: number[];
  /** Cited and given. */
  valid: number[];
  /** Cited but not given: the model made the number up. */
  missing: number[];
  /** Given but not cited. */
  uncited: number[];
}

/** Which of the given sources a reply cited, and which numbers it cited that were never given. */
export function checkCitations(reply: string, sourceIds: readonly number[]): CitationCheck {
  const cited = citedSources(reply);
  return {
    cited,
    valid: cited.filter((n) => sourceIds.includes(n)),
    missing: cited.filter((n) => !sourceIds.includes(n)),
    uncited: sourceIds.filter((n) => !cited.includes(n)),
  };
}

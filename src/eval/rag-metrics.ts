/**
 * Metrics for answers generated with retrieved context. Pure functions over strings, so the same
 * numbers come out in the browser, in Node and in tests.
 *
 * - Context usage: a response uses its context when at least CONTEXT_USAGE_THRESHOLD (0.3) of its
 *   distinct content tokens (lowercased letters/digits runs, citation markers and stopwords
 *   removed, no stemming) occur in the context. 0.3 is low on purpose: a grounded answer rephrases
 *   and adds connecting words, while an answer from the model's own memory shares little beyond
 *   the topic words of the question.
 * - Source attribution: a response is attributed when it cites at least one `[n]` that is a
 *   numbered source of its context. Citations of numbers the context does not have are counted
 *   apart, as missing-source citations (a response can be both attributed and cite a missing
 *   source).
 * - Answer similarity: SQuAD token F1 and exact match against the reference answer (lowercase,
 *   punctuation and articles removed, whitespace tokens), after dropping citation markers, which
 *   attribution already scores.
 *
 * The context is the `Context:` block of the system message: everything after a line starting
 * with `Context:`. Its sources are the lines starting with `[n]`, each running on over following
 * lines up to the next `[m]` line or a blank line.
 */

export const CONTEXT_USAGE_THRESHOLD = 0.3;

export interface RagSource {
  id: number;
  text: string;
}

export interface RagContext {
  /** The whole block after `Context:`. */
  text: string;
  sources: RagSource[];
}

export interface RagExample {
  /** The system message that carries the `Context:` block ('' when there is none). */
  system: string;
  /** The model's answer. */
  response: string;
  /** The reference answer; without one, F1 and exact match are null. */
  reference?: string;
}

export interface RagExampleResult {
  index: number;
  hasContext: boolean;
  /** The numbers of the context's sources. */
  sourceIds: number[];
  /** Share of the response's distinct content tokens found in the context; null without context. */
  contextOverlap: number | null;
  usesContext: boolean;
  /** Every `[n]` the response cites, in order of first appearance. */
  citations: number[];
  validCitations: number[];
  missingCitations: number[];
  attributed: boolean;
  f1: number | null;
  exactMatch: boolean | null;
}

export interface RagAggregate {
  examples: number;
  withContext: number;
  /** Share of examples with context whose response uses it. */
  contextUsage: number | null;
  withSources: number;
  /** Share of examples whose context has numbered sources and whose response cites one of them. */
  sourceAttribution: number | null;
  /** Share of all examples whose response cites at least one source its context does not have. */
  missingSourceRate: number | null;
  missingCitations: number;
  withReference: number;
  meanF1: number | null;
  exactMatchRate: number | null;
}

export interface RagReport {
  perExample: RagExampleResult[];
  aggregate: RagAggregate;
}

const CONTEXT_LINE = /^[ \t]*context[ \t]*:[ \t]*/im;
const SOURCE_START = /^[ \t]*\[(\d{1,3})\][ \t]*/;
// `[1](https://...)` is a Markdown link and `xs[1]` an index expression, not citations.
const CITATION = /(?<!\w)\[(\d{1,3})\](?!\()/g;
const FENCED_CODE = /^[ \t]*(```|~~~)[^\n]*\n[\s\S]*?(?:^[ \t]*\1|$(?![\s\S]))/gm;
const INLINE_CODE = /`[^`\n]+`/g;

// The usual English function words plus contraction tails ("don't" splits into "don", "t").
const STOPWORDS = new Set(
  (
    'a about above after again against all am an and any are as at be because been before being below between both but by ' +
    'can could did do does doing down during each few for from further had has have having he her here hers herself him ' +
    'himself his how i if in into is it its itself just me more most my myself no nor not of off on once only or other our ' +
    'ours ourselves out over own same she should so some such than that the their theirs them themselves then there these ' +
    'they this those through to too under until up very was we were what when where which while who whom why will with ' +
    'would you your yours yourself yourselves also may might must shall s t d ll m re ve don didn doesn isn aren wasn weren'
  ).split(' '),
);

export function extractContext(system: string): RagContext | null {
  const start = CONTEXT_LINE.exec(system);
  if (!start) return null;
  const text = system.slice(start.index + start[0].length).trim();
  const sources: RagSource[] = [];
  let current: { id: number; lines: string[] } | null = null;
  const close = () => {
    if (current) sources.push({ id: current.id, text: current.lines.join(' ').trim() });
    current = null;
  };
  for (const line of text.split('\n')) {
    const m = SOURCE_START.exec(line);
    if (m) {
      close();
      current = { id: Number(m[1]), lines: [line.slice(m[0].length)] };
    } else if (line.trim() === '') {
      close();
    } else {
      current?.lines.push(line.trim());
    }
  }
  close();
  return { text, sources };
}

/** Citation numbers in order of first appearance; code is left out, where brackets index arrays. */
export function citedSources(text: string): number[] {
  const prose = text.replace(FENCED_CODE, ' ').replace(INLINE_CODE, ' ');
  return [...new Set([...prose.matchAll(CITATION)].map((m) => Number(m[1])))];
}

export function contentTokens(text: string): string[] {
  const words =
    text
      .replace(CITATION, ' ')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.filter((w) => !STOPWORDS.has(w));
}

export function contextOverlap(response: string, context: string): number {
  const tokens = new Set(contentTokens(response));
  if (tokens.size === 0) return 0;
  const available = new Set(contentTokens(context));
  let found = 0;
  for (const token of tokens) if (available.has(token)) found++;
  return found / tokens.size;
}

function squadTokens(text: string): string[] {
  return text
    .replace(CITATION, ' ')
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, '')
    .replace(/\b(?:a|an|the)\b/g, ' ')
    .split(/\s+/)
    .filter((t) => t !== '');
}

/** SQuAD token F1 over bags of words; two answers with no tokens at all agree. */
export function tokenF1(prediction: string, reference: string): number {
  const predicted = squadTokens(prediction);
  const expected = squadTokens(reference);
  if (predicted.length === 0 || expected.length === 0) return predicted.length === expected.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of expected) counts.set(t, (counts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of predicted) {
    const left = counts.get(t) ?? 0;
    if (left > 0) {
      common++;
      counts.set(t, left - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / predicted.length;
  const recall = common / expected.length;
  return (2 * precision * recall) / (precision + recall);
}

export function exactMatch(prediction: string, reference: string): boolean {
  return squadTokens(prediction).join(' ') === squadTokens(reference).join(' ');
}

export function evaluateRagExample(example: RagExample, index = 0): RagExampleResult {
  const context = extractContext(example.system);
  const overlap = context ? contextOverlap(example.response, context.text) : null;
  const citations = citedSources(example.response);
  const sourceIds = context?.sources.map((s) => s.id) ?? [];
  const validCitations = citations.filter((n) => sourceIds.includes(n));
  const reference = example.reference;
  return {
    index,
    hasContext: context !== null,
    sourceIds,
    contextOverlap: overlap,
    usesContext: overlap !== null && overlap >= CONTEXT_USAGE_THRESHOLD,
    citations,
    validCitations,
    missingCitations: citations.filter((n) => !sourceIds.includes(n)),
    attributed: validCitations.length > 0,
    f1: reference === undefined ? null : tokenF1(example.response, reference),
    exactMatch: reference === undefined ? null : exactMatch(example.response, reference),
  };
}

const share = (count: number, of: number) => (of === 0 ? null : count / of);

export function evaluateRag(examples: RagExample[]): RagReport {
  const perExample = examples.map((example, i) => evaluateRagExample(example, i));
  const withContext = perExample.filter((r) => r.hasContext);
  const withSources = perExample.filter((r) => r.sourceIds.length > 0);
  const withReference = perExample.filter((r) => r.f1 !== null);
  return {
    perExample,
    aggregate: {
      examples: perExample.length,
      withContext: withContext.length,
      contextUsage: share(withContext.filter((r) => r.usesContext).length, withContext.length),
      withSources: withSources.length,
      sourceAttribution: share(withSources.filter((r) => r.attributed).length, withSources.length),
      missingSourceRate: share(perExample.filter((r) => r.missingCitations.length > 0).length, perExample.length),
      missingCitations: perExample.reduce((sum, r) => sum + r.missingCitations.length, 0),
      withReference: withReference.length,
      meanF1: share(
        withReference.reduce((sum, r) => sum + (r.f1 ?? 0), 0),
        withReference.length,
      ),
      exactMatchRate: share(withReference.filter((r) => r.exactMatch).length, withReference.length),
    },
  };
}

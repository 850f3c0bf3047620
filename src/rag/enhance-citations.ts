/**
 * RAG answer enhancement, the data preparation step of the pipeline: in RAG rows, an assistant
 * sentence that draws on a numbered source but cites none gains the citation of the source it
 * overlaps most. Pure and deterministic; it returns a preview (what would change, per row) and the
 * enhanced rows, and never modifies the rows it is given.
 *
 * The rule (see src/rag/README.md for why these numbers):
 * - A RAG row is a chat row whose system message has a `Context:` block with numbered sources
 *   (parseContext, which reads it exactly as the RAG metrics do).
 * - Every assistant turn is cut into sentences: a sentence ends at . ! ? before whitespace, or at
 *   a line break; fenced code blocks are left alone.
 * - A sentence that already cites a `[n]` is left as it is, and so is one with fewer than
 *   MIN_SENTENCE_CONTENT_WORDS content words ("Hope this helps!").
 * - Overlap with a source = the share of the sentence's distinct content words found in the source,
 *   with the tokenisation of the context-usage metric (contextOverlap in src/eval/rag-metrics.ts).
 * - The sentence gains ` [n]` for the source with the highest overlap (the lowest n on ties) when
 *   that overlap is at least CITATION_OVERLAP_THRESHOLD, placed before its closing punctuation.
 */
import type { DatasetRow, Message } from '../data/types';
import { citedSources, contentTokens, contextOverlap } from '../eval/rag-metrics';
import { parseContext, type ContextSource } from './context';

/** A sentence cites the source that holds at least half of its content words. */
export const CITATION_OVERLAP_THRESHOLD = 0.5;
/** Shorter sentences are connecting phrases; attributing them would be guesswork. */
export const MIN_SENTENCE_CONTENT_WORDS = 3;

export interface CitationChange {
  /** Index of the assistant message in the row's messages. */
  message: number;
  sentence: string;
  /** The source number added as `[n]`. */
  source: number;
  /** Share of the sentence's content words found in that source. */
  overlap: number;
}

export interface RowEnhancement {
  /** 0-based index of the row in the rows given. */
  row: number;
  changes: CitationChange[];
}

export interface EnhancementPreview {
  /** Only the rows that change. */
  rows: RowEnhancement[];
  rowsChanged: number;
  citationsAdded: number;
  /** All rows, the changed ones as new objects; the others are the rows given. */
  enhanced: DatasetRow[];
}

export interface EnhancementOptions {
  threshold?: number;
  minContentWords?: number;
}

interface Span {
  start: number;
  end: number;
}

const FENCE = /^[ \t]*(```|~~~)[^\n]*\n[\s\S]*?(?:^[ \t]*\1[^\n]*$|$(?![\s\S]))/gm;
const SENTENCE = /[^\n]+?(?:[.!?]+["')\]]*(?=\s|$)|$)/gm;
const CLOSING = /[.!?]+["')\]]*$|[:;,]$/;

/** Sentence spans of the prose (trimmed), fenced code blocks excluded. */
export function sentenceSpans(text: string): Span[] {
  const code: Span[] = [...text.matchAll(FENCE)].map((m) => ({ start: m.index, end: m.index + m[0].length }));
  const spans: Span[] = [];
  for (const m of text.matchAll(SENTENCE)) {
    const lead = m[0].length - m[0].trimStart().length;
    const start = m.index + lead;
    const end = m.index + m[0].trimEnd().length;
    if (end > start && !code.some((c) => start < c.end && end > c.start)) spans.push({ start, end });
  }
  return spans;
}

function bestSource(sentence: string, sources: ContextSource[]): { source: number; overlap: number } | null {
  let best: { source: number; overlap: number } | null = null;
  for (const s of [...sources].sort((a, b) => a.id - b.id)) {
    const overlap = contextOverlap(sentence, s.text);
    if (best === null || overlap > best.overlap) best = { source: s.id, overlap };
  }
  return best;
}

function enhanceMessage(content: string, sources: ContextSource[], threshold: number, minWords: number) {
  const changes: { sentence: string; source: number; overlap: number; at: number }[] = [];
  for (const { start, end } of sentenceSpans(content)) {
    const sentence = content.slice(start, end);
    if (citedSources(sentence).length > 0) continue;
    if (new Set(contentTokens(sentence)).size < minWords) continue;
    const best = bestSource(sentence, sources);
    if (best === null || best.overlap < threshold) continue;
    const closing = CLOSING.exec(sentence);
    changes.push({ sentence, ...best, at: closing ? start + closing.index : end });
  }
  let out = content;
  for (const c of [...changes].reverse()) out = `${out.slice(0, c.at)} [${c.source}]${out.slice(c.at)}`;
  return { content: out, changes: changes.map(({ sentence, source, overlap }) => ({ sentence, source, overlap })) };
}

export function enhanceCitations(rows: readonly DatasetRow[], options: EnhancementOptions = {}): EnhancementPreview {
  const threshold = options.threshold ?? CITATION_OVERLAP_THRESHOLD;
  const minWords = options.minContentWords ?? MIN_SENTENCE_CONTENT_WORDS;
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1], got ${threshold}`);
  const preview: EnhancementPreview = { rows: [], rowsChanged: 0, citationsAdded: 0, enhanced: [] };
  rows.forEach((row, index) => {
    const system = row.kind === 'chat' ? row.messages.find((m) => m.role === 'system' && parseContext(m.content) !== null) : undefined;
    const sources = system ? parseContext(system.content)!.filter((s) => s.text !== '') : [];
    if (row.kind !== 'chat' || sources.length === 0) {
      preview.enhanced.push(row);
      return;
    }
    const changes: CitationChange[] = [];
    const messages: Message[] = row.messages.map((m, i) => {
      if (m.role !== 'assistant') return m;
      const result = enhanceMessage(m.content, sources, threshold, minWords);
      changes.push(...result.changes.map((c) => ({ message: i, ...c })));
      return result.changes.length > 0 ? { ...m, content: result.content } : m;
    });
    if (changes.length === 0) {
      preview.enhanced.push(row);
      return;
    }
    preview.enhanced.push({ kind: 'chat', messages });
    preview.rows.push({ row: index, changes });
    preview.rowsChanged++;
    preview.citationsAdded += changes.length;
  });
  return preview;
}

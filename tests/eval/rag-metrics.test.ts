import { describe, expect, it } from 'vitest';
import {
  citedSources,
  CONTEXT_USAGE_THRESHOLD,
  contentTokens,
  contextOverlap,
  evaluateRag,
  evaluateRagExample,
  exactMatch,
  extractContext,
  tokenF1,
} from '../../src/eval/rag-metrics';
import { loadSample } from '../analysis/sample';

const SYSTEM =
  'You answer using the retrieved context and cite sources in brackets.\n\nContext:\n' +
  '[1] Billing policy: Annual plans are refundable in full within 30 days of purchase.\n' +
  '[2] Monthly plans renew automatically on the purchase date.';

describe('context extraction', () => {
  it('reads the Context: block and its numbered sources', () => {
    expect(extractContext(SYSTEM)).toEqual({
      text:
        '[1] Billing policy: Annual plans are refundable in full within 30 days of purchase.\n' +
        '[2] Monthly plans renew automatically on the purchase date.',
      sources: [
        { id: 1, text: 'Billing policy: Annual plans are refundable in full within 30 days of purchase.' },
        { id: 2, text: 'Monthly plans renew automatically on the purchase date.' },
      ],
    });
  });

  it('joins a source spread over several lines and ends it at a blank line', () => {
    const context = extractContext('Context: [4] First line\ncontinues here.\n[7] Other.\n\nAnswer briefly.');
    expect(context?.sources).toEqual([
      { id: 4, text: 'First line continues here.' },
      { id: 7, text: 'Other.' },
    ]);
  });

  it('finds no context without a Context: line', () => {
    expect(extractContext('You are a helpful assistant.')).toBeNull();
    expect(extractContext('')).toBeNull();
  });
});

describe('context usage', () => {
  it('drops stopwords and citation markers, lowercases, keeps numbers', () => {
    expect(contentTokens('The plans are refundable [1] within 30 Days.')).toEqual(['plans', 'refundable', 'within', '30', 'days']);
  });

  it('counts a response built from the context as full use', () => {
    const response = 'Annual plans are refundable in full within 30 days of purchase [1].';
    expect(contextOverlap(response, extractContext(SYSTEM)!.text)).toBe(1);
    expect(evaluateRagExample({ system: SYSTEM, response })).toMatchObject({ hasContext: true, contextOverlap: 1, usesContext: true });
  });

  it('counts an answer from elsewhere as no use', () => {
    const r = evaluateRagExample({ system: SYSTEM, response: 'Octopuses have three hearts.' });
    expect(r).toMatchObject({ contextOverlap: 0, usesContext: false });
  });

  it('draws the line at 30% of the content tokens', () => {
    const context = 'Context:\n[1] alpha beta gamma';
    const at = evaluateRagExample({ system: context, response: 'alpha beta gamma delta epsilon zeta eta theta iota kappa' });
    expect(at.contextOverlap).toBeCloseTo(0.3, 12);
    expect(at.usesContext).toBe(true);
    const under = evaluateRagExample({ system: context, response: 'alpha beta delta epsilon zeta eta theta iota kappa' });
    expect(under.contextOverlap).toBeCloseTo(2 / 9, 12);
    expect(under.usesContext).toBe(false);
  });

  it('has no usage figure without a context', () => {
    expect(evaluateRagExample({ system: '', response: 'Anything.' })).toMatchObject({
      hasContext: false,
      contextOverlap: null,
      usesContext: false,
    });
  });
});

describe('source attribution', () => {
  it('attributes a response that cites a source of its context', () => {
    expect(evaluateRagExample({ system: SYSTEM, response: 'Within 30 days [1].' })).toMatchObject({
      citations: [1],
      validCitations: [1],
      missingCitations: [],
      attributed: true,
    });
  });

  it('counts a citation of a source the context does not have apart', () => {
    expect(evaluateRagExample({ system: SYSTEM, response: 'Within 30 days [3].' })).toMatchObject({
      citations: [3],
      validCitations: [],
      missingCitations: [3],
      attributed: false,
    });
    expect(evaluateRagExample({ system: SYSTEM, response: 'Within 30 days [1][4], see [1].' })).toMatchObject({
      citations: [1, 4],
      missingCitations: [4],
      attributed: true,
    });
  });

  it('does not read brackets in code or links as citations', () => {
    expect(citedSources('Use `xs[1]` or\n```python\nprint(xs[2])\n```\nand [3](https://example.com) but [5].')).toEqual([5]);
  });
});

describe('answer similarity', () => {
  it('gives exact answers F1 1, up to case, punctuation, articles and citations', () => {
    expect(tokenF1('The refund window is 30 days [1].', 'refund window is 30 days')).toBe(1);
    expect(exactMatch('The refund window is 30 days [1].', 'refund window is 30 days')).toBe(true);
  });

  it('gives partial answers the harmonic mean of precision and recall', () => {
    // 2 of 2 predicted tokens are right (P = 1), 2 of 5 reference tokens are found (R = 0.4).
    expect(tokenF1('30 days', 'the refund window is 30 days')).toBeCloseTo((2 * 1 * 0.4) / 1.4, 12);
    // Repeated words count once per occurrence in the reference.
    expect(tokenF1('days days', 'days')).toBeCloseTo(2 / 3, 12);
    expect(exactMatch('30 days', 'the refund window is 30 days')).toBe(false);
  });

  it('gives answers with no word in common F1 0', () => {
    expect(tokenF1('Frankfurt', 'Oregon')).toBe(0);
    expect(tokenF1('', 'Oregon')).toBe(0);
    expect(tokenF1('The.', 'a')).toBe(1);
  });
});

describe('per-example results and aggregate', () => {
  it('aggregates over the examples each metric applies to', () => {
    const report = evaluateRag([
      {
        system: SYSTEM,
        response: 'Annual plans are refundable within 30 days [1].',
        reference: 'Annual plans are refundable within 30 days.',
      },
      { system: SYSTEM, response: 'Octopuses have three hearts [3].', reference: 'Within 30 days.' },
      { system: 'Context:\nNo numbered sources here, just prose about billing.', response: 'Billing prose.', reference: 'Billing prose.' },
      { system: 'Be brief.', response: 'No idea [1].' },
    ]);
    expect(report.perExample.map((r) => r.index)).toEqual([0, 1, 2, 3]);
    expect(report.aggregate).toEqual({
      examples: 4,
      withContext: 3,
      contextUsage: 2 / 3,
      withSources: 2,
      sourceAttribution: 0.5,
      missingSourceRate: 0.5,
      missingCitations: 2,
      withReference: 3,
      meanF1: (1 + 0 + 1) / 3,
      exactMatchRate: 2 / 3,
    });
  });

  it('has no rates for no examples', () => {
    expect(evaluateRag([]).aggregate).toMatchObject({ examples: 0, contextUsage: null, sourceAttribution: null, meanF1: null });
  });

  it("scores the sample's own RAG answers as grounded, attributed and exact", () => {
    const examples = loadSample().flatMap((row) => {
      if (row.kind !== 'chat') return [];
      const system = row.messages.find((m) => m.role === 'system')?.content ?? '';
      const answer = row.messages.filter((m) => m.role === 'assistant').at(-1)!.content;
      return extractContext(system) ? [{ system, response: answer, reference: answer }] : [];
    });
    expect(examples).toHaveLength(10);
    const { aggregate, perExample } = evaluateRag(examples);
    expect(aggregate).toMatchObject({ contextUsage: 1, sourceAttribution: 1, missingSourceRate: 0, meanF1: 1, exactMatchRate: 1 });
    for (const r of perExample) expect(r.contextOverlap).toBeGreaterThanOrEqual(CONTEXT_USAGE_THRESHOLD);
  });
});

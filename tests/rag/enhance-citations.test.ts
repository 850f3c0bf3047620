import { describe, expect, it } from 'vitest';
import type { DatasetRow } from '../../src/data/types';
import { contextOverlap } from '../../src/eval/rag-metrics';
import { CITATION_OVERLAP_THRESHOLD, enhanceCitations, sentenceSpans } from '../../src/rag/enhance-citations';

const SYSTEM =
  'Answer from the context and cite sources.\n\nContext:\n' +
  '[1] Monthly plans renew automatically on the purchase date.\n' +
  '[2] Annual plans are refundable in full within 30 days of purchase. After 30 days refunds are prorated by unused months.\n' +
  '[3] Support is available on weekdays from 9 to 17.';

const rag = (...assistant: string[]): DatasetRow => ({
  kind: 'chat',
  messages: [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: 'Can I get my money back?' },
    ...assistant.flatMap((content, i) => [
      { role: 'assistant' as const, content },
      ...(i < assistant.length - 1 ? [{ role: 'user' as const, content: 'And then?' }] : []),
    ]),
  ],
});

const text = (row: DatasetRow, message: number) => (row.kind === 'chat' ? row.messages[message].content : '');

describe('RAG answer enhancement', () => {
  it('adds [2] to a sentence copied from source 2, before its full stop', () => {
    const rows = [rag('Annual plans are refundable in full within 30 days of purchase. Happy to help!')];
    const preview = enhanceCitations(rows);
    expect(text(preview.enhanced[0], 2)).toBe('Annual plans are refundable in full within 30 days of purchase [2]. Happy to help!');
    expect(preview.rows).toEqual([
      {
        row: 0,
        changes: [{ message: 2, sentence: 'Annual plans are refundable in full within 30 days of purchase.', source: 2, overlap: 1 }],
      },
    ]);
    expect(preview.rowsChanged).toBe(1);
    expect(preview.citationsAdded).toBe(1);
  });

  it('adds nothing to a sentence with no overlap, or one under the threshold', () => {
    const unrelated = 'Our office dog is called Biscuit and loves walks.';
    // "plans", "renew" and "monthly" are in source 1, "cancel" "anytime" "settings" "page" are not: 3 of 7 < 0.5.
    const partial = 'Monthly plans renew, but you can cancel anytime from the settings page.';
    expect(contextOverlap(partial, 'Monthly plans renew automatically on the purchase date.')).toBeLessThan(CITATION_OVERLAP_THRESHOLD);
    const preview = enhanceCitations([rag(`${unrelated} ${partial}`)]);
    expect(preview.rowsChanged).toBe(0);
    expect(preview.rows).toEqual([]);
  });

  it('leaves an already cited sentence unchanged, and cites the best source per sentence', () => {
    const answer =
      'Annual plans are refundable in full within 30 days of purchase [2]. ' +
      'Monthly plans renew automatically on the purchase date.\n' +
      'Support is available on weekdays from 9 to 17!';
    const preview = enhanceCitations([rag(answer)]);
    expect(text(preview.enhanced[0], 2)).toBe(
      'Annual plans are refundable in full within 30 days of purchase [2]. ' +
        'Monthly plans renew automatically on the purchase date [1].\n' +
        'Support is available on weekdays from 9 to 17 [3]!',
    );
    expect(preview.rows[0].changes.map((c) => c.source)).toEqual([1, 3]);
  });

  it('enhances every assistant turn and leaves code blocks alone', () => {
    const code = '```text\nAnnual plans are refundable in full within 30 days of purchase.\n```';
    const preview = enhanceCitations([rag('Support is available on weekdays from 9 to 17.', `Here is the policy:\n${code}`)]);
    expect(text(preview.enhanced[0], 2)).toBe('Support is available on weekdays from 9 to 17 [3].');
    expect(text(preview.enhanced[0], 4)).toBe(`Here is the policy:\n${code}`);
    expect(preview.rows[0].changes.map((c) => c.message)).toEqual([2]);
  });

  it('leaves non-RAG rows, rows without numbered sources and other row kinds unchanged', () => {
    const rows: DatasetRow[] = [
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Annual plans are refundable in full within 30 days.' },
        ],
      },
      {
        kind: 'chat',
        messages: [
          { role: 'system', content: 'Context:\nno numbered sources here' },
          { role: 'assistant', content: 'No numbered sources here at all.' },
        ],
      },
      { kind: 'completion', prompt: 'Context:\n[1] Refunds in 5 days.', completion: 'Refunds arrive in 5 days.' },
      { kind: 'text', text: 'Refunds arrive in 5 days.' },
    ];
    const preview = enhanceCitations(rows);
    expect(preview.rowsChanged).toBe(0);
    for (const [i, row] of preview.enhanced.entries()) expect(row).toBe(rows[i]);
  });

  it('never modifies the rows it is given, and is deterministic', () => {
    const rows = [rag('Monthly plans renew automatically on the purchase date.'), rag('Our office dog is called Biscuit.')];
    const before = structuredClone(rows);
    const first = enhanceCitations(rows);
    expect(rows).toEqual(before);
    expect(first.enhanced[0]).not.toBe(rows[0]);
    expect(first.enhanced[1]).toBe(rows[1]);
    expect(enhanceCitations(rows)).toEqual(first);
    expect(first.rows.map((r) => r.row)).toEqual([0]);
  });

  it('breaks overlap ties towards the lower source number', () => {
    const tie: DatasetRow = {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'Context:\n[1] Backups run nightly in Frankfurt.\n[2] Backups run nightly in Frankfurt too.' },
        { role: 'assistant', content: 'Backups run nightly in Frankfurt.' },
      ],
    };
    expect(enhanceCitations([tie]).rows[0].changes[0]).toMatchObject({ source: 1, overlap: 1 });
  });

  it('finds sentences outside code', () => {
    const t = 'One. Two words here! Three?\n  Four (five.) Six\n```\nx. y.\n```\nSeven.';
    expect(sentenceSpans(t).map((s) => t.slice(s.start, s.end))).toEqual([
      'One.',
      'Two words here!',
      'Three?',
      'Four (five.)',
      'Six',
      'Seven.',
    ]);
  });
});

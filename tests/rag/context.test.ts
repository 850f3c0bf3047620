import { describe, expect, it } from 'vitest';
import { scoreConversation } from '../../src/analysis/analyze';
import { evaluateRagExample, extractContext } from '../../src/eval/rag-metrics';
import { checkCitations, CONTEXT_INSTRUCTION, ContextFormatError, formatContext, parseContext } from '../../src/rag/context';
import { enhanceCitations } from '../../src/rag/enhance-citations';
import { type Passage, splitDocument } from '../../src/rag/passages';
import { PassageIndex } from '../../src/rag/search-index';

const passage = (document: string, index: number, heading: string, text: string): Passage => ({
  id: `${document}#${index}`,
  document,
  index,
  heading,
  text,
});

const PASSAGES = [
  passage('pricing.md', 0, 'Plans', 'The Team plan costs 10 euros per seat and month.'),
  // Line breaks, a blank line, a line that looks like a source and one that looks like a context block.
  passage('faq.html', 3, '', 'Refunds are issued\nwithin 5 days.\n\n[7] not a source\nContext: not a block'),
  passage('notes (old).txt', 1, 'Misc', 'Support answers in English (and German).'),
];

describe('context formatting', () => {
  it('writes the system message: prompt, instruction, then one numbered line per source', () => {
    const formatted = formatContext(PASSAGES, { systemPrompt: 'You are the Acme helpdesk.' })!;
    expect(formatted.system).toBe(
      [
        'You are the Acme helpdesk.',
        '',
        CONTEXT_INSTRUCTION,
        '',
        'Context:',
        '[1] (pricing.md > Plans) The Team plan costs 10 euros per seat and month.',
        '[2] (faq.html) Refunds are issued within 5 days. [7] not a source Context: not a block',
        '[3] (notes old.txt > Misc) Support answers in English (and German).',
      ].join('\n'),
    );
    expect(formatted.sources.map((s) => [s.id, s.passageId])).toEqual([
      [1, 'pricing.md#0'],
      [2, 'faq.html#3'],
      [3, 'notes (old).txt#1'],
    ]);
    expect(formatContext([])).toBeNull();
    expect(formatContext(PASSAGES.slice(0, 1))!.system.startsWith(`${CONTEXT_INSTRUCTION}\n\nContext:\n[1] `)).toBe(true);
  });

  it('round-trips: parseContext gives back the numbered sources, labels and texts', () => {
    const formatted = formatContext(PASSAGES)!;
    expect(parseContext(formatted.system)).toEqual(formatted.sources.map(({ id, label, text }) => ({ id, label, text })));
    expect(parseContext('You are helpful.')).toBeNull();
    expect(parseContext('Context:\n[1] Plain source without a label.')).toEqual([
      { id: 1, label: null, text: 'Plain source without a label.' },
    ]);
  });

  it('is read as RAG by the task analysis and the metrics see exactly its sources', () => {
    const { system } = formatContext(PASSAGES)!;
    const row = {
      kind: 'chat' as const,
      messages: [
        { role: 'system' as const, content: system },
        { role: 'user' as const, content: 'How much is the Team plan?' },
        { role: 'assistant' as const, content: 'The Team plan costs 10 euros per seat and month [1], see also [4].' },
      ],
    };
    const analysis = scoreConversation(row);
    expect(analysis.primaryTask).toBe('rag_enhanced');
    expect(analysis.signals.map((s) => s.id)).toEqual(expect.arrayContaining(['rag.context_block', 'rag.citation']));

    const context = extractContext(system)!;
    expect(context.sources.map((s) => s.id)).toEqual([1, 2, 3]);
    expect(context.sources[1].text).toBe('(faq.html) Refunds are issued within 5 days. [7] not a source Context: not a block');
    const metrics = evaluateRagExample({ system, response: row.messages[2].content });
    expect(metrics).toMatchObject({
      hasContext: true,
      sourceIds: [1, 2, 3],
      citations: [1, 4],
      validCitations: [1],
      missingCitations: [4],
      attributed: true,
      usesContext: true,
    });
  });

  it('refuses a system prompt that has its own Context: line', () => {
    expect(() => formatContext(PASSAGES, { systemPrompt: 'Be brief.\ncontext: support desk' })).toThrow(ContextFormatError);
    expect(() => formatContext(PASSAGES, { systemPrompt: 'Keep the context in mind: be brief.' })).not.toThrow();
  });
});

describe('checkCitations', () => {
  it('tells cited, made-up and uncited sources apart, ignoring code', () => {
    expect(checkCitations('Costs 10 euros [1]. Refunds take 5 days [2][5]. `xs[3]` is code.', [1, 2, 3])).toEqual({
      cited: [1, 2, 5],
      valid: [1, 2],
      missing: [5],
      uncited: [3],
    });
    expect(checkCitations('No citations.', [1, 2])).toEqual({ cited: [], valid: [], missing: [], uncited: [1, 2] });
  });
});

describe('a chat turn over documents', () => {
  it('retrieves, formats, is analysed as RAG, and an uncited copied answer gains the right citation', () => {
    const index = PassageIndex.create();
    const pricing = '# Plans\n\nThe Team plan costs 10 euros per seat and month.\n\n# Trials\n\nTrials last 14 days.';
    index.addDocument(splitDocument('pricing.md', pricing));
    index.addDocument(splitDocument('faq.html', '<h2>Refunds</h2><p>Refunds are issued within 5 days of a cancellation.</p>'));
    const question = 'How fast are refunds issued after a cancellation?';
    const hits = index.search(question);
    expect(hits[0].passage.document).toBe('faq.html');
    const { system, sources } = formatContext(hits.map((h) => h.passage))!;
    expect(sources[0]).toMatchObject({ id: 1, passageId: 'faq.html#0', label: 'faq.html > Refunds' });
    const row = {
      kind: 'chat' as const,
      messages: [
        { role: 'system' as const, content: system },
        { role: 'user' as const, content: question },
        { role: 'assistant' as const, content: 'Refunds are issued within 5 days of a cancellation.' },
      ],
    };
    expect(scoreConversation(row).primaryTask).toBe('rag_enhanced');
    const [enhanced] = enhanceCitations([row]).enhanced;
    const answer = enhanced.kind === 'chat' ? enhanced.messages[2].content : '';
    expect(answer).toBe('Refunds are issued within 5 days of a cancellation [1].');
    expect(
      checkCitations(
        answer,
        sources.map((s) => s.id),
      ),
    ).toMatchObject({ valid: [1], missing: [] });
    expect(evaluateRagExample({ system, response: answer })).toMatchObject({ attributed: true, usesContext: true });
  });
});

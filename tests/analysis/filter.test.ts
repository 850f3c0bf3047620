import { describe, expect, it } from 'vitest';
import { analyzeDataset } from '../../src/analysis/analyze';
import { FILTER_RULE_ORDER, FILTER_RULES, filterDataset, jaccard, NEAR_DUPLICATE_JACCARD, shingles } from '../../src/analysis/filter';
import type { DatasetRow } from '../../src/data/types';
import { chat, loadSample } from './sample';

const BOUNDS = { minResponseChars: 20, maxResponseChars: 200 };
const RESTART = 'Run `sudo systemctl restart nginx` and check the config with `nginx -t` first, so a typo does not take the site down.';
const GOOD = chat(['user', 'How do I restart nginx?'], ['assistant', RESTART]);

const removedIndices = (result: ReturnType<typeof filterDataset>) =>
  Object.fromEntries(FILTER_RULES.map((rule) => [rule, result.removed[rule].map((r) => r.index)]));

describe('quality filter', () => {
  const rows: DatasetRow[] = [
    /* 0 */ GOOD,
    /* 1 */ chat(['user', '   '], ['assistant', 'An answer to nothing in particular, long enough.']),
    /* 2 */ chat(['system', 'You are helpful.'], ['user', 'Is anyone there?']),
    /* 3 */ chat(['user', 'Ok?'], ['assistant', 'Yes.']),
    /* 4 */ chat(['user', 'Tell me everything.'], ['assistant', 'word '.repeat(60)]),
    /* 5 */ chat(['user', 'How do I restart nginx?'], ['assistant', RESTART]),
    /* 6 */ chat(['user', 'how do I restart NGINX'], ['assistant', RESTART.replace('first', 'first,').replace('so a', 'so that a')]),
    /* 7 */ chat(
      ['user', 'How do I reload the nginx config?'],
      ['assistant', 'Run `sudo nginx -s reload` after testing it with `nginx -t`.'],
    ),
    /* 8 */ { kind: 'completion', prompt: 'The capital of France is', completion: ' Paris, a city on the Seine.' },
    /* 9 */ { kind: 'completion', prompt: 'The capital of Spain is', completion: '  ' },
    /* 10 */ { kind: 'text', text: 'Too short.' },
    /* 11 */ { kind: 'completion', prompt: '', completion: 'A story with no prompt at all, just text.' },
    /* 12 */ chat(['user', 'Thanks'], ['assistant', 'You are welcome, any time at all.'], ['user', 'Bye'], ['assistant', 'Bye!']),
  ];
  const result = filterDataset(rows, BOUNDS);

  it('removes each row by the rule it breaks', () => {
    expect(removedIndices(result)).toEqual({
      empty_turn: [1, 9],
      no_assistant_turn: [2],
      response_length: [3, 4, 10, 12],
      exact_duplicate: [5],
      near_duplicate: [6],
    });
    expect(result.keptIndices).toEqual([0, 7, 8, 11]);
    expect(result.kept).toEqual(result.keptIndices.map((i) => rows[i]));
  });

  it('says why, naming the turn, and hands back the row', () => {
    const reasons = Object.fromEntries(
      Object.values(result.removed)
        .flat()
        .map((r) => [r.index, r.reason]),
    );
    expect(reasons[1]).toBe('messages[0] (user) is empty');
    expect(reasons[9]).toBe('completion is empty');
    expect(reasons[3]).toBe('messages[1] (assistant) has 4 characters, under the minimum of 20');
    expect(reasons[4]).toBe('messages[1] (assistant) has 299 characters, over the maximum of 200');
    expect(reasons[10]).toBe('text has 10 characters, under the minimum of 20');
    expect(reasons[12]).toBe('messages[3] (assistant) has 4 characters, under the minimum of 20');
    expect(reasons[5]).toBe('same content as row 1');
    expect(reasons[6]).toMatch(/^nearly the same text as row 1 \(Jaccard 0\.9\d over 5-character shingles\)$/);
    expect(result.removed.exact_duplicate[0]).toMatchObject({ duplicateOf: 0, row: rows[5] });
    expect(result.removed.near_duplicate[0]).toMatchObject({ duplicateOf: 0, row: rows[6] });
  });

  it('keeps a rewording under the near-duplicate threshold', () => {
    const text = (row: DatasetRow) => (row.kind === 'chat' ? row.messages.map((m) => m.content).join('\n') : '');
    expect(jaccard(shingles(text(rows[0])), shingles(text(rows[6])))).toBeGreaterThanOrEqual(NEAR_DUPLICATE_JACCARD);
    expect(jaccard(shingles(text(rows[0])), shingles(text(rows[7])))).toBeLessThan(NEAR_DUPLICATE_JACCARD);
  });

  it('ignores a shared system prompt when looking for near duplicates', () => {
    const system = 'You are the support assistant of Example Corp. Be concise, friendly and precise. '.repeat(10);
    const a = chat(
      ['system', system],
      ['user', 'How do I reset my password?'],
      ['assistant', 'Use the Forgot password link on the sign-in page.'],
    );
    const b = chat(
      ['system', system],
      ['user', 'Where can I download invoices?'],
      ['assistant', 'Invoices are under Settings, then Billing.'],
    );
    expect(filterDataset([a, b], BOUNDS).keptIndices).toEqual([0, 1]);
  });

  it('finds exactly the near duplicates a comparison of every pair finds', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau'.split(' ');
    const bases = Array.from({ length: 12 }, () => Array.from({ length: 30 }, () => words[Math.floor(random() * words.length)]));
    const rows = Array.from({ length: 150 }, (_, i) => {
      const base = [...bases[Math.floor(random() * bases.length)]];
      const edits = Math.floor(random() * 4);
      for (let e = 0; e < edits; e++) base[Math.floor(random() * base.length)] = words[Math.floor(random() * words.length)];
      return chat(['user', `Question ${i}?`], ['assistant', base.join(' ')]);
    });
    const sets = rows.map((row) => shingles(row.kind === 'chat' ? row.messages.map((m) => m.content).join('\n') : ''));
    const kept: number[] = [];
    const expected: number[] = [];
    sets.forEach((set, i) => {
      const dupOf = kept.some((j) => jaccard(set, sets[j]) >= NEAR_DUPLICATE_JACCARD);
      if (dupOf) expected.push(i);
      else kept.push(i);
    });
    const result = filterDataset(rows, { minResponseChars: 1, maxResponseChars: 10_000 });
    expect(result.removed.exact_duplicate).toEqual([]);
    expect(expected.length).toBeGreaterThan(10);
    expect(kept.length).toBeGreaterThan(10);
    expect(result.removed.near_duplicate.map((r) => r.index)).toEqual(expected);
  });

  it('keeps every row of chat_rag_sample.jsonl under the RAG bounds', () => {
    const sample = loadSample();
    const kept = filterDataset(sample, { minResponseChars: 40, maxResponseChars: 800 });
    expect(kept.keptIndices).toEqual(sample.map((_, i) => i));
  });

  it('keeps only the conversations of the chosen task with keepTask, counted under other_task', () => {
    const sample = loadSample();
    const analysis = analyzeDataset(sample);
    const result = filterDataset(sample, { minResponseChars: 40, maxResponseChars: 800, keepTask: 'rag_enhanced' });
    expect(result.keptIndices).toEqual(analysis.ragIndices);
    expect(result.removed.other_task).toHaveLength(21);
    expect(result.removed.other_task.map((r) => r.index)).toEqual(sample.map((_, i) => i).filter((i) => !analysis.ragIndices.includes(i)));
    const first = result.removed.other_task[0];
    expect(first.reason).toBe(
      `its primary task is ${analysis.perConversation[first.index].primaryTask}, not rag_enhanced: ` +
        'single-task training keeps only rag_enhanced conversations',
    );
    for (const rule of FILTER_RULES) expect(result.removed[rule]).toEqual([]);
    expect(Object.keys(result.removed)).toEqual([...FILTER_RULE_ORDER]);
  });

  it('applies the task rule first, so a duplicate of a row of another task counts as another task', () => {
    const rag = chat(
      ['system', 'Context:\n[1] Refunds take 5 days.'],
      ['user', 'When?'],
      ['assistant', 'Refunds take five days [1], counted from the request.'],
    );
    const rows = [GOOD, rag, GOOD, rag];
    const result = filterDataset(rows, { ...BOUNDS, keepTask: 'rag_enhanced' });
    expect(result.keptIndices).toEqual([1]);
    expect(result.removed.other_task.map((r) => r.index)).toEqual([0, 2]);
    expect(result.removed.exact_duplicate.map((r) => r.index)).toEqual([3]);
    expect(filterDataset(rows, { ...BOUNDS, keepTask: null }).removed.other_task).toEqual([]);
    expect(filterDataset(rows, BOUNDS).removed.other_task).toEqual([]);
  });

  it('refuses an unknown task', () => {
    expect(() => filterDataset([GOOD], { ...BOUNDS, keepTask: 'poetry' as never })).toThrow(
      'keepTask must be one of rag_enhanced, code_generation, technical_implementation, ai_ml_education, conversational_chat, got "poetry"',
    );
  });
});

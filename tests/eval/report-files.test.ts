import { describe, expect, it } from 'vitest';
import type { EvaluationReport } from '../../src/eval/evaluate';
import { evaluateRag } from '../../src/eval/rag-metrics';
import { CSV_COLUMNS, toCsv } from '../../src/eval/report-files';

/** RFC 4180 reader, written for the test: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
    i++;
  }
  if (field !== '' || record.length) throw new Error('CSV does not end with CRLF');
  return records;
}

describe('toCsv', () => {
  const awkward = 'Yes, "quoted" [1],\nsecond line\r\nthird';
  const ragScores = {
    hasContext: true,
    sourceIds: [1, 2],
    contextOverlap: 0.5,
    usesContext: true,
    citations: [1, 7],
    validCitations: [1],
    missingCitations: [7],
    attributed: true,
    f1: 0.25,
    exactMatch: false,
  };
  const report: EvaluationReport = {
    settings: {
      maxLength: 64,
      batchSize: 2,
      maxNewTokens: 8,
      temperature: 0,
      topP: 1,
      seed: 0,
      contextUsageThreshold: 0.3,
      rows: 2,
      ragRows: 1,
      adapter: 'zog, v2',
    },
    before: {
      model: 'before',
      label: 'base',
      loss: 2,
      perplexity: Math.exp(2),
      targets: 30,
      scoredExamples: 2,
      rag: evaluateRag([]).aggregate,
    },
    after: {
      model: 'after',
      label: 'zog, v2',
      loss: 1.5,
      perplexity: Math.exp(1.5),
      targets: 30,
      scoredExamples: 2,
      rag: evaluateRag([]).aggregate,
    },
    delta: {
      loss: -0.5,
      perplexity: Math.exp(1.5) - Math.exp(2),
      contextUsage: null,
      sourceAttribution: null,
      missingSourceRate: null,
      meanF1: null,
      exactMatchRate: null,
    },
    examples: [
      { model: 'before', index: 0, kind: 'text', targets: 20, truncated: false, loss: 2.5, perplexity: Math.exp(2.5), rag: null },
      {
        model: 'before',
        index: 1,
        kind: 'chat',
        targets: 10,
        truncated: false,
        loss: 1,
        perplexity: Math.E,
        rag: { ...ragScores, response: awkward, reference: '"Exactly" this' },
      },
      { model: 'after', index: 0, kind: 'text', targets: 20, truncated: false, loss: 2, perplexity: Math.exp(2), rag: null },
      {
        model: 'after',
        index: 1,
        kind: 'chat',
        targets: 10,
        truncated: false,
        loss: 0.5,
        perplexity: Math.exp(0.5),
        rag: { ...ragScores, response: 'plain', reference: null },
      },
    ],
  };

  it('writes one record per example and model, summaries and the delta, quoting fields that need it', () => {
    const csv = toCsv(report);
    expect(csv.split('\r\n')[0]).toBe(CSV_COLUMNS.join(','));
    expect(csv).toContain('"Yes, ""quoted"" [1],\nsecond line\r\nthird"');
    const [header, ...records] = parseCsv(csv);
    expect(header).toEqual([...CSV_COLUMNS]);
    for (const record of records) expect(record).toHaveLength(CSV_COLUMNS.length);
    const rows = records.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
    expect(rows.map((r) => `${r.record}:${r.model}`)).toEqual([
      'example:before',
      'example:before',
      'example:after',
      'example:after',
      'summary:before',
      'summary:after',
      'delta:after-before',
    ]);
    expect(rows[1]).toMatchObject({
      label: 'base',
      index: '1',
      kind: 'chat',
      loss: '1',
      context_overlap: '0.5',
      uses_context: 'true',
      citations: '1 7',
      missing_citations: '7',
      attributed: 'true',
      f1: '0.25',
      exact_match: 'false',
      response: awkward,
      reference: '"Exactly" this',
    });
    // Figures that do not apply stay empty.
    expect(rows[0]).toMatchObject({ loss: '2.5', context_overlap: '', f1: '', response: '', reference: '' });
    expect(rows[3].reference).toBe('');
    expect(rows[5]).toMatchObject({ label: 'zog, v2', loss: '1.5', targets: '30', context_usage: '' });
    expect(rows[6]).toMatchObject({ loss: '-0.5', mean_f1: '', index: '' });
  });
});

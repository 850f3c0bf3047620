import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJsonlBytes } from '../../src/data/jsonl';
import { prepareExample } from '../../src/data/prepare';
import type { DatasetRow } from '../../src/data/types';
import { CSV_COLUMNS, evaluate, EvaluationError, type EvaluationReport, toCsv, toJson } from '../../src/eval/evaluate';
import { generateChat } from '../../src/eval/generate';
import { evaluateRag, tokenF1 } from '../../src/eval/rag-metrics';
import { LoraAdapter } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { prepTokenizerFor } from '../../src/train/pipeline';
import { testGpu } from '../helpers/gpu';
import { randomArray } from '../helpers/numeric';
import { SHARED, STORIES_260K } from '../helpers/paths';
import { memoryWeightsSource, tinyConfig, tinyWeights } from '../helpers/tiny-model';

function jsonl(name: string): DatasetRow[] {
  return parseJsonlBytes(new Uint8Array(readFileSync(resolve(SHARED, 'data', name))), { fileName: name }).rows;
}

// Zog stories are about 190 tokens with this tokenizer; maxLength cuts them to keep the CPU device quick.
const MAX_LENGTH = 72;
const zog = jsonl('zog_stories_eval.jsonl').slice(0, 3);
// Short RAG conversations (under MAX_LENGTH tokens): the sample's run to 350 tokens.
const rag: DatasetRow[] = [
  ['[1] Zog is green.\n[2] Lily is red.', 'Who is Zog?', 'Zog is green [1].'],
  ['[1] It opens at nine.', 'When?', 'At nine [2].'],
].map(([context, question, answer]) => ({
  kind: 'chat',
  messages: [
    { role: 'system', content: `Context:\n${context}` },
    { role: 'user', content: question },
    { role: 'assistant', content: answer },
  ],
}));

async function setup(random: boolean) {
  const opened = await openModel(nodeFileSource(STORIES_260K));
  const gpu = await testGpu();
  // The tiny random model shares the stories260K vocabulary so that it can use its tokenizer.
  const config = tinyConfig({ vocabSize: opened.config.vocabSize, maxPositionEmbeddings: 512 });
  const model = random
    ? await LlamaModel.load(gpu, memoryWeightsSource(config, tinyWeights(config, 3)))
    : await LlamaModel.load(gpu, opened.weights);
  const adapter = new LoraAdapter(gpu, model.config, validateLoraConfig({ r: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] }));
  gpu.write(adapter.params, randomArray(adapter.layout.totalFloats, 5, -0.2, 0.2));
  return { model, adapter, tok: prepTokenizerFor(opened) };
}

/** Mean token loss of one example on its own (batch of one), the way training counts targets. */
async function exampleLoss(model: LlamaModel, adapter: LoraAdapter | null, ids: number[], labels: number[]) {
  const batch = makeBatch([ids], [labels]);
  model.loss(batch, adapter);
  return { sum: await model.readLossSum(batch), targets: batch.targetCount };
}

describe('evaluate (stories260K and a tiny random model)', () => {
  for (const random of [false, true]) {
    const subject = random ? 'tiny random GQA model' : 'stories260K';
    it(`${subject}: losses, perplexities and RAG scores match independent computations`, async () => {
      const { model, adapter, tok } = await setup(random);
      const rows = [...zog, ...rag];
      const settings = { maxNewTokens: 10, temperature: 0, batchSize: 3, maxLength: MAX_LENGTH };
      const progress: string[] = [];
      const report = await evaluate(model, tok, adapter, rows, {
        ...settings,
        adapterLabel: 'random',
        onProgress: (p) => progress.push(`${p.model} ${p.stage} ${p.done}/${p.total}`),
      });
      expect(report.settings).toMatchObject({ ...settings, rows: 5, ragRows: 2, adapter: 'random', contextUsageThreshold: 0.3 });
      expect(progress).toEqual([
        'before loss 1/2',
        'before loss 2/2',
        'before generation 1/2',
        'before generation 2/2',
        'after loss 1/2',
        'after loss 2/2',
        'after generation 1/2',
        'after generation 2/2',
      ]);
      expect(report.examples.map((e) => `${e.model}${e.index}`)).toEqual([
        'before0',
        'before1',
        'before2',
        'before3',
        'before4',
        'after0',
        'after1',
        'after2',
        'after3',
        'after4',
      ]);

      for (const [side, sideAdapter, summary] of [
        ['before', null, report.before],
        ['after', adapter, report.after!],
      ] as const) {
        let sum = 0;
        let targets = 0;
        for (const [index, row] of rows.entries()) {
          const example = prepareExample(row, tok, { maxLength: MAX_LENGTH });
          const own = await exampleLoss(model, sideAdapter, example.inputIds, example.labels);
          const e = report.examples.find((x) => x.model === side && x.index === index)!;
          // Chat rows score only the assistant turns, as training does.
          expect(e.targets).toBe(own.targets);
          expect(e.loss).toBeCloseTo(own.sum / own.targets, 5);
          expect(e.perplexity).toBeCloseTo(Math.exp(e.loss!), 5);
          sum += own.sum;
          targets += own.targets;
        }
        expect(summary.targets).toBe(targets);
        expect(summary.loss).toBeCloseTo(sum / targets, 5);
        expect(summary.perplexity).toBeCloseTo(Math.exp(sum / targets), 4);

        const answers = [];
        for (const index of [3, 4]) {
          const row = rows[index] as Extract<DatasetRow, { kind: 'chat' }>;
          const reply = await generateChat(model, tok, sideAdapter, row.messages.slice(0, 2), { maxNewTokens: 10, temperature: 0 });
          const e = report.examples.find((x) => x.model === side && x.index === index)!;
          const reference = row.messages[2].content;
          expect(e.rag).toMatchObject({ response: reply.text, reference, f1: tokenF1(reply.text, reference), hasContext: true });
          answers.push({ system: row.messages[0].content, response: reply.text, reference });
        }
        expect(summary.rag).toEqual(evaluateRag(answers).aggregate);
        for (const e of report.examples.filter((x) => x.model === side && x.index < 3)) expect(e.rag).toBeNull();
      }
      expect(report.after!.loss).not.toBeCloseTo(report.before.loss!, 3);
      expect(report.delta!.loss).toBeCloseTo(report.after!.loss! - report.before.loss!, 12);
      expect(report.delta!.meanF1).toBeCloseTo(report.after!.rag!.meanF1! - report.before.rag!.meanF1!, 12);
      expect(JSON.parse(toJson(report))).toEqual(JSON.parse(JSON.stringify(report)));
    });
  }

  it('evaluates the base model alone when no adapter is given, and counts rows left without targets', async () => {
    const { model, tok } = await setup(false);
    // Only the system and user turns fit in 8 tokens: nothing of the assistant's is left to score.
    const report = await evaluate(model, tok, null, [zog[0], rag[0]], { maxLength: 8, maxNewTokens: 2 });
    expect(report.after).toBeNull();
    expect(report.delta).toBeNull();
    expect(report.examples).toHaveLength(2);
    expect(report.examples[0]).toMatchObject({ targets: 7, truncated: true });
    expect(report.examples[1]).toMatchObject({ kind: 'chat', targets: 0, loss: null, perplexity: null, truncated: true });
    expect(report.before.targets).toBe(7);
    expect(report.before.scoredExamples).toBe(1);
  });

  it('refuses bad settings and stops when aborted', async () => {
    const { model, tok } = await setup(false);
    await expect(evaluate(model, tok, null, [], {})).rejects.toThrow(EvaluationError);
    await expect(evaluate(model, tok, null, zog, { topP: 0 })).rejects.toThrow(/topP/);
    const controller = new AbortController();
    controller.abort(new Error('cancelled by the user'));
    await expect(evaluate(model, tok, null, zog, { signal: controller.signal })).rejects.toThrow('cancelled by the user');
  });
});

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

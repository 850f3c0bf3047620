import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJsonlBytes } from '../../src/data/jsonl';
import { prepareExample } from '../../src/data/prepare';
import type { DatasetRow } from '../../src/data/types';
import { evaluate, EvaluationError } from '../../src/eval/evaluate';
import { toJson } from '../../src/eval/report-files';
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

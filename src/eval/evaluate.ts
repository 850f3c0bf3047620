/**
 * Held-out evaluation of the base model and of base + adapter on the same rows.
 *
 * - Loss: mean token cross-entropy over every target of the dataset, with the masks training uses
 *   (`prepareExample`: all tokens of text rows, the completion of completion rows, assistant turns
 *   of chat rows), rows cut to `maxLength`; perplexity = exp(loss). Per example, the same over its
 *   own targets.
 * - RAG: chat rows whose system message has a `Context:` block (see rag-metrics.ts) get an answer
 *   generated to their last user turn through the chat template; it is scored for context usage
 *   (at least CONTEXT_USAGE_THRESHOLD of its content words in the context), source attribution
 *   (cites a `[n]` of the context; citations of missing sources counted apart) and SQuAD token F1
 *   and exact match against the row's last assistant message.
 *
 * The report is plain data (it crosses the worker boundary by structured clone); report-files.ts
 * writes it as JSON and CSV.
 */
import { type Example, type PrepTokenizer, batchExamples, prepareExample } from '../data/prepare';
import type { DatasetRow, Message } from '../data/types';
import type { LoraWeights } from '../lora/adapter';
import type { LlamaModel } from '../model/llama';
import { makeBatch } from '../train/batch';
import { generateChat } from './generate';
import {
  CONTEXT_USAGE_THRESHOLD,
  evaluateRag,
  evaluateRagExample,
  extractContext,
  type RagAggregate,
  type RagExampleResult,
} from './rag-metrics';

export interface EvaluationSettings {
  /** Tokens per example for the loss; longer rows keep their start, as in training. */
  maxLength: number;
  /** Examples per forward pass for the loss. */
  batchSize: number;
  /** Longest generated answer for RAG rows. */
  maxNewTokens: number;
  /** 0: greedy answers. */
  temperature: number;
  topP: number;
  /** Seeds sampling (each row and model starts from this seed, so both models draw alike). */
  seed: number;
}

export const DEFAULT_EVALUATION_SETTINGS: EvaluationSettings = {
  maxLength: 512,
  batchSize: 4,
  maxNewTokens: 64,
  temperature: 0,
  topP: 1,
  seed: 0,
};

/** 'before': the base model; 'after': base + adapter. */
export type EvaluatedModel = 'before' | 'after';

export interface ExampleRagEvaluation extends Omit<RagExampleResult, 'index'> {
  response: string;
  /** The row's last assistant message after its last user turn; null when the row ends with the question. */
  reference: string | null;
}

/** One row of the dataset under one model. */
export interface ExampleEvaluation {
  model: EvaluatedModel;
  /** Position of the row in the evaluated dataset. */
  index: number;
  kind: DatasetRow['kind'];
  /** Target tokens scored (0 when nothing is left to score within maxLength). */
  targets: number;
  truncated: boolean;
  loss: number | null;
  perplexity: number | null;
  /** RAG rows only. */
  rag: ExampleRagEvaluation | null;
}

export interface ModelEvaluation {
  model: EvaluatedModel;
  /** 'base', or the adapter's name. */
  label: string;
  /** Mean over all scored target tokens of the dataset; null when there are none. */
  loss: number | null;
  perplexity: number | null;
  targets: number;
  /** Rows with at least one target. */
  scoredExamples: number;
  /** Over the RAG rows; null when the dataset has none. */
  rag: RagAggregate | null;
}

/** after - before; null where either side has no figure. */
export interface EvaluationDelta {
  loss: number | null;
  perplexity: number | null;
  contextUsage: number | null;
  sourceAttribution: number | null;
  missingSourceRate: number | null;
  meanF1: number | null;
  exactMatchRate: number | null;
}

export interface EvaluationReport {
  settings: EvaluationSettings & {
    contextUsageThreshold: number;
    rows: number;
    ragRows: number;
    /** The adapter's label, null when only the base model was evaluated. */
    adapter: string | null;
  };
  before: ModelEvaluation;
  /** null without an adapter. */
  after: ModelEvaluation | null;
  delta: EvaluationDelta | null;
  /** Every row under 'before', then (with an adapter) every row under 'after'. */
  examples: ExampleEvaluation[];
}

export interface EvaluationProgress {
  model: EvaluatedModel;
  stage: 'loss' | 'generation';
  done: number;
  total: number;
}

export interface EvaluateOptions extends Partial<EvaluationSettings> {
  /** Name of the adapter in the report (default 'adapter'). */
  adapterLabel?: string;
  onProgress?(progress: EvaluationProgress): void;
  /** Checked between batches and answers; evaluation throws the signal's reason once aborted. */
  signal?: AbortSignal;
}

export class EvaluationError extends Error {
  override name = 'EvaluationError';
}

interface RagRow {
  index: number;
  messages: Message[];
  system: string;
  reference: string | null;
}

/** Evaluates `rows` with the base model and, when `adapter` is given, with base + adapter. */
export async function evaluate(
  model: LlamaModel,
  tok: PrepTokenizer,
  adapter: LoraWeights | null,
  rows: readonly DatasetRow[],
  opts: EvaluateOptions = {},
): Promise<EvaluationReport> {
  const settings = evaluationSettings(opts);
  if (rows.length === 0) throw new EvaluationError('The evaluation dataset is empty: give it at least one row.');
  const examples = rows.map((row, index) => {
    try {
      return prepareExample(row, tok, settings);
    } catch (err) {
      throw new EvaluationError(`row ${index + 1}: ${(err as Error).message}`, { cause: err });
    }
  });
  const ragRows = rows.flatMap((row, index) => ragRow(row, index));
  const adapterLabel = adapter ? (opts.adapterLabel ?? 'adapter') : null;

  const run = async (side: EvaluatedModel, sideAdapter: LoraWeights | null, label: string) => {
    const losses = await exampleLosses(
      model,
      sideAdapter,
      examples,
      settings,
      (done, total) => {
        opts.onProgress?.({ model: side, stage: 'loss', done, total });
      },
      opts.signal,
    );
    const answers = new Map<number, ExampleRagEvaluation>();
    for (const [i, rag] of ragRows.entries()) {
      opts.signal?.throwIfAborted();
      const { text } = await generateChat(model, tok, sideAdapter, rag.messages, {
        maxNewTokens: settings.maxNewTokens,
        temperature: settings.temperature,
        topP: settings.topP,
        seed: settings.seed,
      });
      const { index: _, ...scores } = evaluateRagExample({ system: rag.system, response: text, reference: rag.reference ?? undefined });
      answers.set(rag.index, { ...scores, response: text, reference: rag.reference });
      opts.onProgress?.({ model: side, stage: 'generation', done: i + 1, total: ragRows.length });
    }
    const perExample: ExampleEvaluation[] = rows.map((row, index) => {
      const { sum, targets } = losses[index];
      const loss = targets > 0 ? sum / targets : null;
      return {
        model: side,
        index,
        kind: row.kind,
        targets,
        truncated: examples[index].truncated,
        loss,
        perplexity: loss === null ? null : Math.exp(loss),
        rag: answers.get(index) ?? null,
      };
    });
    const totalTargets = losses.reduce((n, l) => n + l.targets, 0);
    const loss = totalTargets > 0 ? losses.reduce((s, l) => s + l.sum, 0) / totalTargets : null;
    const summary: ModelEvaluation = {
      model: side,
      label,
      loss,
      perplexity: loss === null ? null : Math.exp(loss),
      targets: totalTargets,
      scoredExamples: losses.filter((l) => l.targets > 0).length,
      rag: ragRows.length
        ? evaluateRag(
            ragRows.map((r) => {
              const answer = answers.get(r.index)!;
              return { system: r.system, response: answer.response, reference: r.reference ?? undefined };
            }),
          ).aggregate
        : null,
    };
    return { summary, perExample };
  };

  const before = await run('before', null, 'base');
  const after = adapter ? await run('after', adapter, adapterLabel!) : null;
  return {
    settings: {
      ...settings,
      contextUsageThreshold: CONTEXT_USAGE_THRESHOLD,
      rows: rows.length,
      ragRows: ragRows.length,
      adapter: adapterLabel,
    },
    before: before.summary,
    after: after?.summary ?? null,
    delta: after ? evaluationDelta(before.summary, after.summary) : null,
    examples: [...before.perExample, ...(after?.perExample ?? [])],
  };
}

function evaluationSettings(opts: EvaluateOptions): EvaluationSettings {
  const s: EvaluationSettings = { ...DEFAULT_EVALUATION_SETTINGS };
  for (const key of Object.keys(s) as (keyof EvaluationSettings)[]) {
    const value = opts[key];
    if (value !== undefined) s[key] = value;
  }
  const check = (field: keyof EvaluationSettings, ok: boolean, rule: string) => {
    if (!ok) throw new EvaluationError(`Evaluation setting "${field}" must be ${rule}, got ${s[field]}.`);
  };
  check('maxLength', Number.isInteger(s.maxLength) && s.maxLength >= 2, 'an integer of at least 2');
  check('batchSize', Number.isInteger(s.batchSize) && s.batchSize >= 1, 'a positive integer');
  check('maxNewTokens', Number.isInteger(s.maxNewTokens) && s.maxNewTokens >= 1, 'a positive integer');
  check('temperature', Number.isFinite(s.temperature) && s.temperature >= 0, 'a number >= 0');
  check('topP', s.topP > 0 && s.topP <= 1, 'in (0, 1]');
  check('seed', Number.isInteger(s.seed) && s.seed >= 0, 'a whole number >= 0');
  return s;
}

/** A chat row with a `Context:` block in its system message(s) and a user turn to answer. */
function ragRow(row: DatasetRow, index: number): RagRow[] {
  if (row.kind !== 'chat') return [];
  const system = row.messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n\n');
  const lastUser = row.messages.map((m) => m.role).lastIndexOf('user');
  if (lastUser < 0 || !extractContext(system)) return [];
  const reference = row.messages.slice(lastUser + 1).find((m) => m.role === 'assistant')?.content ?? null;
  return [{ index, messages: row.messages, system, reference }];
}

/** Summed token loss and target count of each example, batchSize examples per forward pass. */
async function exampleLosses(
  model: LlamaModel,
  adapter: LoraWeights | null,
  examples: readonly Example[],
  settings: EvaluationSettings,
  onBatch: (done: number, total: number) => void,
  signal: AbortSignal | undefined,
): Promise<{ sum: number; targets: number }[]> {
  const out: { sum: number; targets: number }[] = [];
  // Padding sits where labels are -100, so its id does not matter.
  const batches = batchExamples(examples, settings.batchSize, 0);
  for (const [i, padded] of batches.entries()) {
    signal?.throwIfAborted();
    const batch = makeBatch(padded.inputIds, padded.labels);
    const targets = Array.from({ length: batch.B }, (_, b) =>
      batch.targets.subarray(b * batch.T, (b + 1) * batch.T).reduce((n, t) => n + (t >= 0 ? 1 : 0), 0),
    );
    if (batch.targetCount === 0) {
      for (const _ of targets) out.push({ sum: 0, targets: 0 });
    } else {
      model.loss(batch, adapter);
      const sums = await model.readRowLossSums(batch);
      for (const [b, n] of targets.entries()) out.push({ sum: sums[b], targets: n });
    }
    onBatch(i + 1, batches.length);
  }
  return out;
}

function evaluationDelta(before: ModelEvaluation, after: ModelEvaluation): EvaluationDelta {
  const diff = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null ? null : b - a);
  return {
    loss: diff(before.loss, after.loss),
    perplexity: diff(before.perplexity, after.perplexity),
    contextUsage: diff(before.rag?.contextUsage, after.rag?.contextUsage),
    sourceAttribution: diff(before.rag?.sourceAttribution, after.rag?.sourceAttribution),
    missingSourceRate: diff(before.rag?.missingSourceRate, after.rag?.missingSourceRate),
    meanF1: diff(before.rag?.meanF1, after.rag?.meanF1),
    exactMatchRate: diff(before.rag?.exactMatchRate, after.rag?.exactMatchRate),
  };
}

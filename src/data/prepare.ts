/**
 * Dataset rows -> tokenized training examples, with Hugging Face's label convention: labels have
 * the length of input_ids, the model shifts them (position t is scored against label t + 1), and
 * -100 marks a position that is not a target.
 *
 * What is trained:
 *   text        every token, and an appended EOS (when the tokenizer has one) so the model learns
 *               where a text ends.
 *   completion  the completion and an appended EOS; the prompt is masked.
 *   chat        each assistant turn and the end-of-turn text its template writes after it
 *               (`<|im_end|>\n` for ChatML, EOS for DEFAULT_CHAT_TEMPLATE), so the model learns to
 *               stop; system and user turns are masked.
 * Position 0 is never a target, so a BOS needs no masking.
 *
 * Assistant spans. @huggingface/jinja drops `{% generation %}` markers, so spans come from rendering
 * the conversation prefix by prefix: assistant turn i starts where
 * render(messages[..i), add_generation_prompt) ends and ends where render(messages[..i]) ends,
 * provided each is a prefix of the next and of the whole render (a template that ignores
 * add_generation_prompt thus gets its assistant header trained too). A template that renders a turn
 * differently once later turns follow (for example one that treats the last message specially)
 * fails that check; for it the turn's content is searched in the full text instead, and the
 * end-of-turn text is what the full text shares with the end-of-turn of render(messages[..i]).
 *
 * Character spans -> token spans. The text before each boundary is tokenized; when its ids are a
 * prefix of the full ids the boundary lies between two tokens, at that count. Otherwise one token
 * straddles it (`Assistant: ` + `Hi` tokenizes to `...:`, `▁Hi`): decoding growing prefixes of
 * the full ids finds that token, which is then trained, since it holds reply text (as with the
 * offset-based assistant masks of transformers).
 */
import type { TextTokenizer } from '../model/tokenizer';
import { chatRenderer, type ChatRenderer, type ChatSettings } from './chat-template';
import type { DatasetRow, Message } from './types';
import { shuffledIndices } from '../util/random';

/** Hugging Face's ignore_index. */
const IGNORE = -100;

export interface PrepTokenizer extends ChatSettings {
  tokenizer: TextTokenizer;
}

export interface Example {
  inputIds: number[];
  /** Same length as inputIds; -100 where nothing is trained. */
  labels: number[];
  /** The tokenized row was longer than maxLength and lost its end (for a packed row: one of its examples). */
  truncated: boolean;
}

export interface PrepareOptions {
  /** Tokens per example; longer rows keep their start. */
  maxLength: number;
  /**
   * Concatenate consecutive examples into rows of at most maxLength tokens (an example is never
   * split). Attention crosses example boundaries inside a row and positions run on, as with TRL's
   * 'wrapped' packing (TRL's 'bfd' strategy keeps examples apart through variable-length attention,
   * which this engine does not have). The first token of each appended example is not a target,
   * so a packed row trains exactly the targets of its examples.
   */
  packing?: boolean;
  /** Share of rows held out for evaluation, in [0, 1); at least one row when > 0 and there are two rows or more. */
  evalFraction?: number;
  /** Seed of the shuffle that orders the rows and picks the evaluation rows (default 0). */
  seed?: number;
}

export interface PreparedDataset {
  train: Example[];
  eval: Example[];
  /** Rows cut to maxLength (counted before packing, in both splits). */
  truncatedCount: number;
  /** Rows left without any target after truncation, and so dropped. */
  droppedNoTargets: number;
}

export interface PaddedBatch {
  inputIds: number[][];
  labels: number[][];
}

export class DataPrepError extends Error {
  override name = 'DataPrepError';
}

type Span = [start: number, end: number];

export function prepareExample(row: DatasetRow, tok: PrepTokenizer, opts: { maxLength: number }): Example {
  checkMaxLength(opts.maxLength);
  const { tokenizer } = tok;
  const eos = tokenizer.eosTokenIds[0];
  let ids: number[];
  let labels: number[];
  switch (row.kind) {
    case 'text':
      ids = withEos(tokenizer.encode(row.text), eos);
      labels = ids.slice();
      break;
    case 'completion': {
      const text = row.prompt + row.completion;
      ({ ids, labels } = labelSpans(text, [[row.prompt.length, text.length]], tokenizer, true));
      if (eos !== undefined && ids[ids.length - 1] !== eos) {
        ids.push(eos);
        labels.push(eos);
      }
      break;
    }
    case 'chat': {
      const renderer = rendererFor(tok);
      const text = renderer.render(row.messages);
      ({ ids, labels } = labelSpans(text, assistantSpans(row.messages, renderer, text), tokenizer, false));
      break;
    }
  }
  const truncated = ids.length > opts.maxLength;
  return { inputIds: ids.slice(0, opts.maxLength), labels: labels.slice(0, opts.maxLength), truncated };
}

/** Rows held out for evaluation: evalFraction of them, at least one and never all. */
export function heldOutCount(rows: number, evalFraction: number): number {
  return evalFraction > 0 && rows >= 2 ? Math.min(Math.max(Math.round(rows * evalFraction), 1), rows - 1) : 0;
}

/**
 * Shuffles the rows with the seed, holds out the first evalFraction of them for evaluation, and
 * prepares both parts; examples with no target left are dropped and counted.
 */
export function prepareDataset(rows: readonly DatasetRow[], tok: PrepTokenizer, opts: PrepareOptions): PreparedDataset {
  checkMaxLength(opts.maxLength);
  const evalFraction = opts.evalFraction ?? 0;
  if (!(evalFraction >= 0 && evalFraction < 1)) {
    throw new RangeError(`evalFraction must be at least 0 and below 1, got ${evalFraction}`);
  }
  const order = shuffledIndices(rows.length, opts.seed ?? 0);
  const evalCount = heldOutCount(rows.length, evalFraction);
  let truncatedCount = 0;
  let droppedNoTargets = 0;
  const build = (indices: number[]): Example[] => {
    const examples: Example[] = [];
    for (const index of indices) {
      let example: Example;
      try {
        example = prepareExample(rows[index], tok, opts);
      } catch (err) {
        throw new DataPrepError(`row ${index + 1}: ${(err as Error).message}`, { cause: err });
      }
      if (example.truncated) truncatedCount++;
      if (example.labels.some((label, t) => t > 0 && label !== IGNORE)) examples.push(example);
      else droppedNoTargets++;
    }
    return opts.packing ? pack(examples, opts.maxLength) : examples;
  };
  const evalExamples = build(order.slice(0, evalCount));
  return { train: build(order.slice(evalCount)), eval: evalExamples, truncatedCount, droppedNoTargets };
}

/** Consecutive groups of batchSize examples (the last may be smaller), right-padded to their longest. */
export function batchExamples(examples: readonly Example[], batchSize: number, padId: number): PaddedBatch[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const batches: PaddedBatch[] = [];
  for (let i = 0; i < examples.length; i += batchSize) {
    const group = examples.slice(i, i + batchSize);
    const T = Math.max(...group.map((e) => e.inputIds.length));
    batches.push({
      inputIds: group.map((e) => [...e.inputIds, ...new Array<number>(T - e.inputIds.length).fill(padId)]),
      labels: group.map((e) => [...e.labels, ...new Array<number>(T - e.labels.length).fill(IGNORE)]),
    });
  }
  return batches;
}

/** Shorter rows could hold no target: position 0 is never one. */
function checkMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new RangeError(`maxLength must be an integer of at least 2 tokens, got ${maxLength}`);
  }
}

function withEos(ids: number[], eos: number | undefined): number[] {
  return eos === undefined || ids[ids.length - 1] === eos ? ids : [...ids, eos];
}

/** Parsing a Jinja template costs far more than rendering it, and a dataset renders each conversation several times. */
const renderers = new Map<string, ChatRenderer>();

function rendererFor(tok: ChatSettings): ChatRenderer {
  const key = JSON.stringify([tok.chatTemplate, tok.bosToken, tok.eosToken]);
  let renderer = renderers.get(key);
  if (!renderer) {
    renderer = chatRenderer(tok);
    renderers.set(key, renderer);
  }
  return renderer;
}

function assistantSpans(messages: readonly Message[], renderer: ChatRenderer, full: string): Span[] {
  const spans: Span[] = [];
  let cursor = 0;
  messages.forEach((message, i) => {
    if (message.role !== 'assistant') return;
    const before = renderer.render(messages.slice(0, i), { addGenerationPrompt: true });
    const through = renderer.render(messages.slice(0, i + 1));
    const span: Span =
      through.startsWith(before) && full.startsWith(through) && before.length >= cursor
        ? [before.length, through.length]
        : searchedSpan(full, message.content, through, cursor, i);
    spans.push(span);
    cursor = span[1];
  });
  return spans;
}

function searchedSpan(full: string, content: string, through: string, cursor: number, index: number): Span {
  const start = full.indexOf(content, cursor);
  const inThrough = through.lastIndexOf(content);
  if (start < 0 || inThrough < 0) {
    throw new DataPrepError(
      `the chat template changes message ${index + 1} (assistant) when more turns follow, and its text cannot be ` +
        'found in the rendered conversation, so the assistant tokens cannot be told apart from the rest.',
    );
  }
  let end = start + content.length;
  const endOfTurn = through.slice(inThrough + content.length);
  for (let k = 0; k < endOfTurn.length && full[end] === endOfTurn[k]; k++) end++;
  return [start, end];
}

function labelSpans(
  text: string,
  spans: readonly Span[],
  tokenizer: TextTokenizer,
  addSpecialTokens: boolean,
): { ids: number[]; labels: number[] } {
  const ids = tokenizer.encode(text, { addSpecialTokens });
  const labels = new Array<number>(ids.length).fill(IGNORE);
  for (const [start, end] of spans) {
    const from = tokenBoundary(text, start, ids, tokenizer, addSpecialTokens, 'start');
    const to = tokenBoundary(text, end, ids, tokenizer, addSpecialTokens, 'end');
    for (let t = from; t < to; t++) labels[t] = ids[t];
  }
  return { ids, labels };
}

/**
 * The token index where character `char` of `text` falls. For a token that straddles it, 'start'
 * gives that token (it is included in a span starting there) and 'end' the one after it.
 */
function tokenBoundary(
  text: string,
  char: number,
  ids: readonly number[],
  tokenizer: TextTokenizer,
  addSpecialTokens: boolean,
  side: 'start' | 'end',
): number {
  if (char >= text.length) return ids.length;
  const prefix = tokenizer.encode(text.slice(0, char), { addSpecialTokens });
  if (prefix.length <= ids.length && prefix.every((id, t) => id === ids[t])) return prefix.length;
  // Decoded lengths of ids[0, k) grow with k; find the first k that reaches the prefix's decoded length.
  const target = tokenizer.decode(prefix).length;
  const decodedLength = (k: number) => tokenizer.decode(ids.slice(0, k)).length;
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (decodedLength(mid) >= target) hi = mid;
    else lo = mid + 1;
  }
  if (lo === 0 || decodedLength(lo) === target) return lo;
  return side === 'start' ? lo - 1 : lo;
}

function pack(examples: readonly Example[], maxLength: number): Example[] {
  const packed: Example[] = [];
  let current: Example | null = null;
  for (const example of examples) {
    if (current && current.inputIds.length + example.inputIds.length <= maxLength) {
      current.inputIds.push(...example.inputIds);
      current.labels.push(IGNORE, ...example.labels.slice(1));
      current.truncated ||= example.truncated;
    } else {
      current = { inputIds: [...example.inputIds], labels: [...example.labels], truncated: example.truncated };
      packed.push(current);
    }
  }
  return packed;
}

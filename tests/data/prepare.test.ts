import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chatSettingsFromConfig } from '../../src/data/chat-template';
import { parseJsonlBytes } from '../../src/data/jsonl';
import { DataPrepError, batchExamples, prepareDataset, prepareExample, type Example, type PrepTokenizer } from '../../src/data/prepare';
import type { DatasetRow, Message } from '../../src/data/types';
import { TextTokenizer } from '../../src/model/tokenizer';

const SHARED = path.resolve(__dirname, '../../../shared');
const STORIES = path.join(SHARED, 'models/stories260K');
const IGNORE = -100;
const BOS = 1;
const EOS = 2;

/** ChatML written out, as SmolLM2 and Qwen2.5 ship it (minus their default system prompt). */
const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TWO_TURNS: Message[] = [
  { role: 'system', content: 'Be nice.' },
  { role: 'user', content: 'hi' },
  { role: 'assistant', content: 'Hello there.' },
  { role: 'user', content: 'Who are you?' },
  { role: 'assistant', content: 'Zog the dragon.' },
];

let stories: PrepTokenizer;
let tokenizer: TextTokenizer;

beforeAll(() => {
  const config = JSON.parse(readFileSync(path.join(STORIES, 'tokenizer_config.json'), 'utf8'));
  tokenizer = TextTokenizer.fromJson(JSON.parse(readFileSync(path.join(STORIES, 'tokenizer.json'), 'utf8')), config);
  stories = { tokenizer, ...chatSettingsFromConfig(config) };
});

function withTemplate(chatTemplate: string): PrepTokenizer {
  return { ...stories, chatTemplate };
}

/** The decoded text of each contiguous run of trained positions. */
function trainedRuns(example: Example): string[] {
  const runs: number[][] = [];
  example.labels.forEach((label, t) => {
    if (label === IGNORE) return;
    expect(label).toBe(example.inputIds[t]);
    if (t > 0 && example.labels[t - 1] !== IGNORE) runs[runs.length - 1].push(label);
    else runs.push([label]);
  });
  return runs.map((ids) => tokenizer.decode(ids));
}

function targetCount(example: Example): number {
  return example.labels.filter((label, t) => t > 0 && label !== IGNORE).length;
}

function readRows(file: string): DatasetRow[] {
  return parseJsonlBytes(new Uint8Array(readFileSync(path.join(SHARED, 'data', file)))).rows;
}

describe('prepareExample', () => {
  it('trains every token of a text row, with EOS appended', () => {
    const text = 'Once upon a time, Zog flew.';
    const example = prepareExample({ kind: 'text', text }, stories, { maxLength: 512 });
    expect(example.inputIds).toEqual([...tokenizer.encode(text), EOS]);
    expect(example.inputIds[0]).toBe(BOS);
    expect(example.labels).toEqual(example.inputIds);
    expect(example.truncated).toBe(false);
  });

  it('masks the prompt of a completion row and trains the completion and EOS', () => {
    const example = prepareExample({ kind: 'completion', prompt: 'Q: 2+2?', completion: ' 4' }, stories, { maxLength: 512 });
    expect(example.inputIds).toEqual([...tokenizer.encode('Q: 2+2? 4'), EOS]);
    expect(trainedRuns(example)).toEqual(['4</s>']);
    const promptLength = tokenizer.encode('Q: 2+2?').length;
    expect(example.labels.slice(0, promptLength).every((l) => l === IGNORE)).toBe(true);
    expect(example.labels.slice(promptLength).every((l) => l !== IGNORE)).toBe(true);
  });

  it('trains a token that straddles the prompt/completion boundary', () => {
    // "A: " alone ends in a lone "▁"; followed by "He" the space joins the reply's first token "▁He".
    const prompt = 'Q: Who? A: ';
    const example = prepareExample({ kind: 'completion', prompt, completion: 'He flew.' }, stories, { maxLength: 512 });
    const promptIds = tokenizer.encode(prompt);
    expect(example.inputIds.slice(0, promptIds.length)).not.toEqual(promptIds);
    expect(trainedRuns(example)).toEqual(['He flew.</s>']);
    expect(example.labels.slice(0, promptIds.length - 1)).toEqual(promptIds.slice(0, -1).map(() => IGNORE));
  });

  it('trains only the assistant turn and its end-of-turn text under a ChatML template', () => {
    const messages = TWO_TURNS.slice(0, 3);
    const example = prepareExample({ kind: 'chat', messages }, withTemplate(CHATML), { maxLength: 512 });
    const full = '<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello there.<|im_end|>\n';
    expect(example.inputIds).toEqual(tokenizer.encode(full, { addSpecialTokens: false }));
    // Every system and user token, and the assistant header, is masked.
    const prompt = tokenizer.encode('<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n', {
      addSpecialTokens: false,
    });
    expect(example.labels.slice(0, prompt.length)).toEqual(prompt.map(() => IGNORE));
    expect(example.labels.slice(prompt.length)).toEqual(example.inputIds.slice(prompt.length));
    expect(trainedRuns(example)).toEqual(['Hello there.<|im_end|>\n']);
  });

  it('trains both assistant turns of a multi-turn conversation', () => {
    const example = prepareExample({ kind: 'chat', messages: TWO_TURNS }, withTemplate(CHATML), { maxLength: 512 });
    expect(trainedRuns(example)).toEqual(['Hello there.<|im_end|>\n', 'Zog the dragon.<|im_end|>\n']);
    const masked = example.inputIds.filter((_, t) => example.labels[t] === IGNORE);
    expect(tokenizer.decode(masked)).not.toMatch(/Hello|Zog/);
  });

  it('uses the plain default template when the model has none, with BOS first and EOS trained', () => {
    expect(stories.chatTemplate).toBeNull();
    const example = prepareExample({ kind: 'chat', messages: TWO_TURNS }, stories, { maxLength: 512 });
    const full = '<s>System: Be nice.\n\nUser: hi\n\nAssistant: Hello there.</s>\n\nUser: Who are you?\n\nAssistant: Zog the dragon.</s>';
    expect(example.inputIds).toEqual(tokenizer.encode(full, { addSpecialTokens: false }));
    expect(example.inputIds[0]).toBe(BOS);
    expect(example.inputIds.filter((id) => id === BOS)).toHaveLength(1);
    expect(trainedRuns(example)).toEqual(['Hello there.</s>', 'Zog the dragon.</s>']);
    expect(example.labels[example.labels.length - 1]).toBe(EOS);
  });

  it('trains the reply token that swallows a trailing space of the generation prompt', () => {
    const spaced =
      "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}" +
      "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}";
    const example = prepareExample({ kind: 'chat', messages: TWO_TURNS }, withTemplate(spaced), { maxLength: 512 });
    expect(trainedRuns(example)).toEqual(['Hello there.\n', 'Zog the dragon.\n']);
    const firstTrained = example.labels.findIndex((l) => l !== IGNORE);
    expect(tokenizer.decode(example.inputIds.slice(0, firstTrained))).toMatch(/assistant:$/);
  });

  it('finds assistant turns by their text when a template renders the last message differently', () => {
    const lastSpecial =
      "{% for message in messages %}{{ message['role'] + ':' }}{% if loop.last %}{{ '(last) ' }}{% endif %}" +
      "{{ message['content'] + eos_token }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}";
    const example = prepareExample({ kind: 'chat', messages: TWO_TURNS }, withTemplate(lastSpecial), { maxLength: 512 });
    expect(trainedRuns(example)).toEqual(['Hello there.</s>', 'Zog the dragon.</s>']);
    const masked = example.inputIds.filter((_, t) => example.labels[t] === IGNORE);
    expect(tokenizer.decode(masked)).toMatch(/\(last\)\s*$/);
  });

  it('refuses a template that rewrites earlier assistant turns beyond recognition', () => {
    const rewriting =
      "{% for message in messages %}{% if loop.last %}{{ message['content'] }}" +
      "{% else %}{{ message['content'] | upper }}{% endif %}\n{% endfor %}";
    expect(() => prepareExample({ kind: 'chat', messages: TWO_TURNS }, withTemplate(rewriting), { maxLength: 512 })).toThrow(DataPrepError);
  });

  it('keeps the start of a long row and flags it', () => {
    const text = 'Once upon a time, there was a little dragon named Zog. Zog had green wings and a kind heart.';
    const full = [...tokenizer.encode(text), EOS];
    const example = prepareExample({ kind: 'text', text }, stories, { maxLength: 10 });
    expect(example).toEqual({ inputIds: full.slice(0, 10), labels: full.slice(0, 10), truncated: true });
    const exact = prepareExample({ kind: 'text', text }, stories, { maxLength: full.length });
    expect(exact.truncated).toBe(false);
  });

  it('rejects a maxLength that cannot hold a target', () => {
    expect(() => prepareExample({ kind: 'text', text: 'a' }, stories, { maxLength: 1 })).toThrow(RangeError);
    expect(() => prepareExample({ kind: 'text', text: 'a' }, stories, { maxLength: 2.5 })).toThrow(RangeError);
  });
});

describe('prepareDataset', () => {
  /** Distinct rows, recognisable from their tokens. */
  const numbered: DatasetRow[] = Array.from({ length: 20 }, (_, i) => ({ kind: 'text', text: `Story ${i}: Zog flew.` }));
  const rowOf = (example: Example) => tokenizer.decode(example.inputIds, { skipSpecialTokens: true });

  it('prepares the shared chat sample with the default template', () => {
    const rows = readRows('chat_rag_sample.jsonl');
    const { train, eval: held, truncatedCount, droppedNoTargets } = prepareDataset(rows, stories, { maxLength: 4096 });
    expect(train).toHaveLength(31);
    expect(held).toEqual([]);
    expect(truncatedCount).toBe(0);
    expect(droppedNoTargets).toBe(0);
    for (const example of train) expect(example.labels[example.labels.length - 1]).toBe(EOS);
  });

  it('counts truncated rows', () => {
    const rows = readRows('zog_stories_train.jsonl');
    const lengths = rows.map((row) => (row.kind === 'text' ? tokenizer.encode(row.text).length + 1 : 0));
    const maxLength = [...lengths].sort((a, b) => a - b)[Math.floor(lengths.length / 2)];
    const expected = lengths.filter((n) => n > maxLength).length;
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(rows.length);
    const prepared = prepareDataset(rows, stories, { maxLength });
    expect(prepared.truncatedCount).toBe(expected);
    expect(prepared.train.filter((e) => e.truncated)).toHaveLength(expected);
    for (const example of prepared.train) expect(example.inputIds.length).toBeLessThanOrEqual(maxLength);
  });

  it('drops rows that truncation leaves without a trained token', () => {
    const longPrompt: DatasetRow = {
      kind: 'chat',
      messages: [
        { role: 'system', content: 'A very long system prompt that fills the whole budget on its own.' },
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
    };
    const prepared = prepareDataset([longPrompt, { kind: 'text', text: 'Zog' }], stories, { maxLength: 8 });
    expect(prepared.droppedNoTargets).toBe(1);
    expect(prepared.truncatedCount).toBe(1);
    expect(prepared.train.map(rowOf)).toEqual(['Zog']);
  });

  it('splits a deterministic, disjoint evaluation set', () => {
    const opts = { maxLength: 64, evalFraction: 0.25, seed: 7 };
    const first = prepareDataset(numbered, stories, opts);
    expect(prepareDataset(numbered, stories, opts)).toEqual(first);
    expect(first.eval).toHaveLength(5);
    expect(first.train).toHaveLength(15);
    const trainRows = new Set(first.train.map(rowOf));
    const evalRows = first.eval.map(rowOf);
    expect(evalRows.filter((row) => trainRows.has(row))).toEqual([]);
    expect(new Set([...trainRows, ...evalRows])).toEqual(new Set(numbered.map((r) => (r.kind === 'text' ? r.text : ''))));
    const other = prepareDataset(numbered, stories, { ...opts, seed: 8 });
    expect(other.eval.map(rowOf)).not.toEqual(evalRows);
  });

  it('holds out at least one row, and never all of them', () => {
    expect(prepareDataset(numbered.slice(0, 3), stories, { maxLength: 64, evalFraction: 0.01 }).eval).toHaveLength(1);
    expect(prepareDataset(numbered.slice(0, 3), stories, { maxLength: 64, evalFraction: 0.99 }).train).toHaveLength(1);
    expect(prepareDataset(numbered.slice(0, 1), stories, { maxLength: 64, evalFraction: 0.5 }).eval).toHaveLength(0);
    expect(() => prepareDataset(numbered, stories, { maxLength: 64, evalFraction: 1 })).toThrow(RangeError);
  });

  it('packs whole examples up to maxLength, training the same targets', () => {
    const maxLength = 40;
    const plain = prepareDataset(numbered, stories, { maxLength, seed: 3 });
    const packed = prepareDataset(numbered, stories, { maxLength, seed: 3, packing: true });
    expect(packed.train.length).toBeLessThan(plain.train.length);
    for (const row of packed.train) {
      expect(row.inputIds.length).toBeLessThanOrEqual(maxLength);
      expect(row.labels).toHaveLength(row.inputIds.length);
    }
    expect(packed.train.flatMap((e) => e.inputIds)).toEqual(plain.train.flatMap((e) => e.inputIds));
    const targets = (examples: Example[]) => examples.reduce((sum, e) => sum + targetCount(e), 0);
    expect(targets(packed.train)).toBe(targets(plain.train));
    // Each packed example after the first starts with its BOS, which is not a target.
    const second = packed.train[0].inputIds.indexOf(BOS, 1);
    expect(second).toBeGreaterThan(0);
    expect(packed.train[0].labels[second]).toBe(IGNORE);
    expect(packed.train[0].labels[second + 1]).toBe(packed.train[0].inputIds[second + 1]);
  });

  it('names the row when the chat template fails', () => {
    const refusing = withTemplate("{{ raise_exception('no system messages') if messages[0]['role'] == 'system' else 'ok' }}");
    const rows: DatasetRow[] = [
      { kind: 'text', text: 'fine' },
      { kind: 'chat', messages: TWO_TURNS },
    ];
    expect(() => prepareDataset(rows, refusing, { maxLength: 64 })).toThrow(
      new DataPrepError('row 2: the chat template refused the conversation: no system messages'),
    );
  });
});

describe('batchExamples', () => {
  const example = (ids: number[], labels: number[]): Example => ({ inputIds: ids, labels, truncated: false });

  it('pads right to the longest row of each batch', () => {
    const examples = [example([1, 5, 6], [1, 5, 6]), example([1, 7], [IGNORE, 7]), example([1, 8, 9, 10], [1, 8, 9, 10])];
    expect(batchExamples(examples, 2, 0)).toEqual([
      {
        inputIds: [
          [1, 5, 6],
          [1, 7, 0],
        ],
        labels: [
          [1, 5, 6],
          [IGNORE, 7, IGNORE],
        ],
      },
      { inputIds: [[1, 8, 9, 10]], labels: [[1, 8, 9, 10]] },
    ]);
    expect(batchExamples([], 4, 0)).toEqual([]);
    expect(() => batchExamples(examples, 0, 0)).toThrow(RangeError);
  });
});

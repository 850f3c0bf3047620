/**
 * Quality filter run before training. Rules apply in FILTER_RULE_ORDER and a row is removed by
 * the first rule it fails, so every removed row has exactly one reason. Nothing is dropped
 * silently: each removed row comes back with its index, rule and reason for the user to inspect.
 *
 * - other_task (only with `keepTask`): a conversation whose primary task (the task analysis,
 *   scoreConversation) is another task. This is the pipeline's "RAG conversation filtering" for
 *   single-task training; it runs first, so the other rules, the duplicate search included, see
 *   only the task's own conversations.
 * - empty_turn: a message (or completion, or text) that is empty or whitespace only. An empty
 *   prompt is allowed: a completion with no prompt is plain text continuation.
 * - no_assistant_turn: a conversation with nothing for the model to learn (loss is on assistant
 *   turns only).
 * - response_length: an assistant turn (completion, text) outside the preset's bounds, counted in
 *   characters (code points) after trimming.
 * - exact_duplicate: the same row, byte for byte, as an earlier kept row.
 * - near_duplicate: normalised text (NFKC, lowercase, every run of non-letters/digits one space)
 *   of the user and assistant turns, cut into overlapping 5-character shingles; a row whose
 *   shingle set has Jaccard similarity >= 0.9 with an earlier kept row is removed. System messages
 *   are left out because datasets often share one long system prompt, which would make unrelated
 *   conversations look alike. Candidates are found with prefix filtering (Bayardo et al., "Scaling
 *   up all pairs similarity search", 2007), which finds exactly the pairs above the threshold
 *   without comparing every pair.
 */
import type { DatasetRow, Role } from '../data/types';
import { scoreConversation } from './analyze';
import { TASK_IDS, type TaskId } from './tasks';
import { responseChars } from './text';

export { responseChars };

/** The rules that judge a row's content. */
export const FILTER_RULES = ['empty_turn', 'no_assistant_turn', 'response_length', 'exact_duplicate', 'near_duplicate'] as const;
export type FilterRule = (typeof FILTER_RULES)[number];
/** The rule that keeps one task's conversations for single-task training (`keepTask`). */
export const TASK_FILTER_RULE = 'other_task';
/** Every rule, in the order they apply. */
export const FILTER_RULE_ORDER = [TASK_FILTER_RULE, ...FILTER_RULES] as const;
export type FilterRuleId = (typeof FILTER_RULE_ORDER)[number];

export const NEAR_DUPLICATE_JACCARD = 0.9;
export const SHINGLE_CHARS = 5;

export interface FilterOptions {
  minResponseChars: number;
  maxResponseChars: number;
  /** Jaccard similarity from which a row is a near duplicate (default NEAR_DUPLICATE_JACCARD). */
  nearDuplicateJaccard?: number;
  /** Keep only the conversations whose primary task is this one (single-task training); null or absent keeps every task. */
  keepTask?: TaskId | null;
}

export interface RemovedRow {
  /** 0-based position in the rows given; `reason` counts rows from 1, as people do. */
  index: number;
  rule: FilterRuleId;
  reason: string;
  row: DatasetRow;
  /** For duplicates: the index of the kept row it repeats. */
  duplicateOf?: number;
}

export interface FilterResult {
  kept: DatasetRow[];
  keptIndices: number[];
  removed: Record<FilterRuleId, RemovedRow[]>;
}

/** The parts of a row with their names as the user knows them. */
function parts(row: DatasetRow): { name: string; role: Role; content: string }[] {
  switch (row.kind) {
    case 'chat':
      return row.messages.map((m, i) => ({ name: `messages[${i}] (${m.role})`, role: m.role, content: m.content }));
    case 'completion':
      return [
        { name: 'prompt', role: 'user', content: row.prompt },
        { name: 'completion', role: 'assistant', content: row.completion },
      ];
    case 'text':
      return [{ name: 'text', role: 'assistant', content: row.text }];
  }
}

function ruleProblem(row: DatasetRow, options: FilterOptions): { rule: FilterRuleId; reason: string } | null {
  if (options.keepTask) {
    const task = scoreConversation(row).primaryTask;
    if (task !== options.keepTask) {
      return {
        rule: TASK_FILTER_RULE,
        reason: `its primary task is ${task}, not ${options.keepTask}: single-task training keeps only ${options.keepTask} conversations`,
      };
    }
  }
  const all = parts(row);
  const empty = all.find((p) => p.content.trim() === '' && !(row.kind === 'completion' && p.name === 'prompt'));
  if (empty) return { rule: 'empty_turn', reason: `${empty.name} is empty` };
  const responses = all.filter((p) => p.role === 'assistant');
  if (responses.length === 0) return { rule: 'no_assistant_turn', reason: 'the conversation has no assistant turn to learn from' };
  for (const p of responses) {
    const chars = responseChars(p.content);
    if (chars < options.minResponseChars) {
      return { rule: 'response_length', reason: `${p.name} has ${chars} characters, under the minimum of ${options.minResponseChars}` };
    }
    if (chars > options.maxResponseChars) {
      return { rule: 'response_length', reason: `${p.name} has ${chars} characters, over the maximum of ${options.maxResponseChars}` };
    }
  }
  return null;
}

function exactKey(row: DatasetRow): string {
  return JSON.stringify([row.kind, parts(row).map((p) => [p.role, p.content])]);
}

export function normaliseForDuplicates(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

export function shingles(text: string): Set<string> {
  const chars = Array.from(normaliseForDuplicates(text));
  if (chars.length <= SHINGLE_CHARS) return new Set([chars.join('')]);
  const out = new Set<string>();
  for (let i = 0; i + SHINGLE_CHARS <= chars.length; i++) out.add(chars.slice(i, i + SHINGLE_CHARS).join(''));
  return out;
}

export function jaccard(a: Set<string>, b: Set<string>): number {
  let common = 0;
  for (const s of a) if (b.has(s)) common++;
  return common / (a.size + b.size - common);
}

function duplicateText(row: DatasetRow): string {
  return parts(row)
    .filter((p) => p.role !== 'system')
    .map((p) => p.content)
    .join('\n');
}

/**
 * For each candidate (in order), the earlier kept candidate it nearly duplicates, if any: the most
 * similar one, the earliest on ties.
 */
function nearDuplicates(texts: string[], threshold: number): ({ of: number; similarity: number } | null)[] {
  const sets = texts.map(shingles);
  // Rarest shingles first: their prefixes are short and their posting lists shorter still.
  const frequency = new Map<string, number>();
  for (const set of sets) for (const s of set) frequency.set(s, (frequency.get(s) ?? 0) + 1);
  const rarity = (s: string) => frequency.get(s) ?? 0;
  const byRarity = (a: string, b: string) => rarity(a) - rarity(b) || (a < b ? -1 : a > b ? 1 : 0);
  const postings = new Map<string, number[]>();
  // The epsilon keeps a product that lands a hair above an integer from shortening the prefix.
  const prefixLength = (size: number) => size - Math.ceil(threshold * size - 1e-9) + 1;
  return sets.map((set, i) => {
    const ordered = [...set].sort(byRarity);
    const prefix = ordered.slice(0, prefixLength(set.size));
    const candidates = new Set<number>();
    for (const s of prefix) for (const j of postings.get(s) ?? []) candidates.add(j);
    let best: { of: number; similarity: number } | null = null;
    for (const j of [...candidates].sort((a, b) => a - b)) {
      const small = Math.min(set.size, sets[j].size);
      const large = Math.max(set.size, sets[j].size);
      if (small < threshold * large - 1e-9) continue;
      const similarity = jaccard(set, sets[j]);
      if (similarity >= threshold - 1e-12 && (best === null || similarity > best.similarity)) best = { of: j, similarity };
    }
    if (best === null) {
      for (const s of prefix) {
        const list = postings.get(s);
        if (list) list.push(i);
        else postings.set(s, [i]);
      }
    }
    return best;
  });
}

export function filterDataset(rows: DatasetRow[], options: FilterOptions): FilterResult {
  if (options.keepTask && !TASK_IDS.includes(options.keepTask)) {
    throw new RangeError(`keepTask must be one of ${TASK_IDS.join(', ')}, got ${JSON.stringify(options.keepTask)}`);
  }
  const removed = Object.fromEntries(FILTER_RULE_ORDER.map((rule) => [rule, [] as RemovedRow[]])) as Record<FilterRuleId, RemovedRow[]>;
  const remove = (index: number, rule: FilterRuleId, reason: string, duplicateOf?: number) => {
    removed[rule].push({ index, rule, reason, row: rows[index], ...(duplicateOf === undefined ? {} : { duplicateOf }) });
  };

  const firstSeen = new Map<string, number>();
  const candidates: number[] = [];
  for (const [index, row] of rows.entries()) {
    const problem = ruleProblem(row, options);
    const key = exactKey(row);
    const original = firstSeen.get(key);
    if (problem) {
      remove(index, problem.rule, problem.reason);
    } else if (original !== undefined) {
      remove(index, 'exact_duplicate', `same content as row ${original + 1}`, original);
    } else {
      firstSeen.set(key, index);
      candidates.push(index);
    }
  }

  const threshold = options.nearDuplicateJaccard ?? NEAR_DUPLICATE_JACCARD;
  const near = nearDuplicates(
    candidates.map((i) => duplicateText(rows[i])),
    threshold,
  );
  const keptIndices: number[] = [];
  for (const [k, dup] of near.entries()) {
    const index = candidates[k];
    if (dup === null) {
      keptIndices.push(index);
      continue;
    }
    const original = candidates[dup.of];
    const similarity = dup.similarity.toFixed(2);
    remove(
      index,
      'near_duplicate',
      `nearly the same text as row ${original + 1} (Jaccard ${similarity} over ${SHINGLE_CHARS}-character shingles)`,
      original,
    );
  }
  return { kept: keptIndices.map((i) => rows[i]), keptIndices, removed };
}

import type { DatasetRow } from '../data/types';
import { responseChars } from './text';
import { recommend, type Recommendation } from './recommend';
import { DEFINITION, detectSignals, type FiredSignal, HOW_TO, straightQuotes } from './signals';
import { rowMessages, TASK_IDS, type TaskId } from './tasks';

export type QuestionType = 'how_to' | 'definition' | 'other';

export interface ConversationAnalysis {
  index: number;
  primaryTask: TaskId;
  /** Sum of the weights of the task's fired signals, capped at 1. */
  scores: Record<TaskId, number>;
  signals: FiredSignal[];
}

export interface DatasetAnalysis {
  conversations: number;
  perConversation: ConversationAnalysis[];
  /** Per task: conversations with it as primary task, their percentage, and its mean score over all conversations. */
  distribution: Record<TaskId, { count: number; percent: number; meanScore: number }>;
  /** Mean length of the assistant turns (completions, texts) in characters, as the length filter counts them. */
  avgResponseChars: number;
  /** Over all user turns (prompts). */
  questionTypes: Record<QuestionType, { count: number; share: number }>;
  /** Conversations whose primary task is rag_enhanced. */
  ragIndices: number[];
  recommendation: Recommendation;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * The primary task is the highest score; ties go to the more specific task (TASK_IDS order). A
 * conversation where no signal fires is ordinary chat.
 */
export function scoreConversation(row: DatasetRow, index = 0): ConversationAnalysis {
  const signals = detectSignals(rowMessages(row));
  const scores = Object.fromEntries(TASK_IDS.map((task) => [task, 0])) as Record<TaskId, number>;
  for (const s of signals) scores[s.task] += s.weight;
  for (const task of TASK_IDS) scores[task] = round(Math.min(1, scores[task]), 2);
  const best = TASK_IDS.reduce((a, b) => (scores[b] > scores[a] ? b : a));
  return { index, primaryTask: scores[best] > 0 ? best : 'conversational_chat', scores, signals };
}

export function questionType(userTurn: string): QuestionType {
  const text = straightQuotes(userTurn);
  if (HOW_TO.test(text)) return 'how_to';
  if (DEFINITION.test(text)) return 'definition';
  return 'other';
}

export function analyzeDataset(rows: DatasetRow[]): DatasetAnalysis {
  const analyzer = new DatasetAnalyzer();
  for (const row of rows) analyzer.add(row);
  return analyzer.result();
}

/**
 * The same analysis fed one row at a time, so a streamed import or a dataset read chunk by chunk
 * is analysed without holding its rows. It sums in the order analyzeDataset does, so the figures
 * are identical; `keep` bounds `perConversation` (the page lists the first ones), and the other
 * figures still cover every row.
 */
export class DatasetAnalyzer {
  #n = 0;
  readonly #perConversation: ConversationAnalysis[] = [];
  readonly #counts = Object.fromEntries(TASK_IDS.map((task) => [task, 0])) as Record<TaskId, number>;
  readonly #scoreSums = Object.fromEntries(TASK_IDS.map((task) => [task, 0])) as Record<TaskId, number>;
  readonly #ragIndices: number[] = [];
  #responses = 0;
  #responseChars = 0;
  #userTurns = 0;
  readonly #typeCounts: Record<QuestionType, number> = { how_to: 0, definition: 0, other: 0 };

  constructor(private readonly keep = Number.POSITIVE_INFINITY) {}

  add(row: DatasetRow): void {
    const c = scoreConversation(row, this.#n);
    this.#n++;
    if (this.#perConversation.length < this.keep) this.#perConversation.push(c);
    this.#counts[c.primaryTask]++;
    for (const task of TASK_IDS) this.#scoreSums[task] += c.scores[task];
    if (c.primaryTask === 'rag_enhanced') this.#ragIndices.push(c.index);
    for (const m of rowMessages(row)) {
      if (m.role === 'assistant') {
        this.#responses++;
        this.#responseChars += responseChars(m.content);
      } else if (m.role === 'user') {
        this.#userTurns++;
        this.#typeCounts[questionType(m.content)]++;
      }
    }
  }

  result(): DatasetAnalysis {
    const n = this.#n;
    const distribution = Object.fromEntries(
      TASK_IDS.map((task) => {
        const count = this.#counts[task];
        const scoreSum = this.#scoreSums[task];
        return [task, { count, percent: n === 0 ? 0 : round((100 * count) / n, 1), meanScore: n === 0 ? 0 : round(scoreSum / n, 3) }];
      }),
    ) as DatasetAnalysis['distribution'];
    const avgResponseChars = this.#responses === 0 ? 0 : round(this.#responseChars / this.#responses, 1);
    const questionTypes = Object.fromEntries(
      (Object.keys(this.#typeCounts) as QuestionType[]).map((type) => [
        type,
        { count: this.#typeCounts[type], share: this.#userTurns === 0 ? 0 : round(this.#typeCounts[type] / this.#userTurns, 3) },
      ]),
    ) as DatasetAnalysis['questionTypes'];
    return {
      conversations: n,
      perConversation: [...this.#perConversation],
      distribution,
      avgResponseChars,
      questionTypes,
      ragIndices: [...this.#ragIndices],
      recommendation: recommend({ ...this.#counts }),
    };
  }
}

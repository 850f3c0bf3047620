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
  const perConversation = rows.map((row, i) => scoreConversation(row, i));
  const n = rows.length;
  const distribution = Object.fromEntries(
    TASK_IDS.map((task) => {
      const count = perConversation.filter((c) => c.primaryTask === task).length;
      const scoreSum = perConversation.reduce((sum, c) => sum + c.scores[task], 0);
      return [task, { count, percent: n === 0 ? 0 : round((100 * count) / n, 1), meanScore: n === 0 ? 0 : round(scoreSum / n, 3) }];
    }),
  ) as DatasetAnalysis['distribution'];

  const messages = rows.map(rowMessages);
  const responses = messages.flat().filter((m) => m.role === 'assistant');
  const avgResponseChars =
    responses.length === 0 ? 0 : round(responses.reduce((sum, m) => sum + responseChars(m.content), 0) / responses.length, 1);

  const userTurns = messages.flat().filter((m) => m.role === 'user');
  const typeCounts: Record<QuestionType, number> = { how_to: 0, definition: 0, other: 0 };
  for (const turn of userTurns) typeCounts[questionType(turn.content)]++;
  const questionTypes = Object.fromEntries(
    (Object.keys(typeCounts) as QuestionType[]).map((type) => [
      type,
      { count: typeCounts[type], share: userTurns.length === 0 ? 0 : round(typeCounts[type] / userTurns.length, 3) },
    ]),
  ) as DatasetAnalysis['questionTypes'];

  const counts = Object.fromEntries(TASK_IDS.map((task) => [task, distribution[task].count])) as Record<TaskId, number>;
  return {
    conversations: n,
    perConversation,
    distribution,
    avgResponseChars,
    questionTypes,
    ragIndices: perConversation.filter((c) => c.primaryTask === 'rag_enhanced').map((c) => c.index),
    recommendation: recommend(counts),
  };
}

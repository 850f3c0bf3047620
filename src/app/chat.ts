/**
 * The chat playground's engine side: a turn searches the stored documents with the user's message,
 * puts the top passages into the system message as numbered sources (src/rag/context.ts), renders
 * the conversation with the model's chat template and streams the reply token by token through the
 * KV-cache generation of src/eval/generate.ts, from the base model or a stored adapter at a scale,
 * or both side by side (base first). Every turn is stored with what produced it; replies are rated,
 * corrected and chosen in place; the log becomes training rows (chat-log.ts).
 */
import { chatPrompt, generateChat } from '../eval/generate';
import { checkCitations, formatContext } from '../rag/context';
import {
  newId,
  type ChatReply,
  type ChatSource,
  type ChatTurn,
  type ChatTurnSettings,
  type ConversationRecord,
  type DatasetRecord,
  type DatasetSummary,
  type Rating,
  type WebtuneDb,
} from '../storage/db';
import type { AdapterLibrary } from './adapters';
import type { ChatDatasetRequest, ChatEvent, ChatRequest, ChatResult, ReplyRef } from './api';
import {
  type ConversationQuery,
  type ConversationSummary,
  logJsonl,
  matchesQuery,
  promptMessages,
  summarize,
  trainingRows,
} from './chat-log';
import type { DocumentLibrary } from './documents';
import { EngineStateError } from './errors';
import type { ModelSession } from './models';

/** Most sources a turn may get; each takes a few hundred tokens of the model's context. */
export const MAX_TOP_K = 10;
const TITLE_CHARS = 80;

export function checkChatSettings(s: ChatTurnSettings): ChatTurnSettings {
  const bad = (field: string, rule: string, value: unknown): never => {
    throw new EngineStateError(`Chat setting "${field}" must be ${rule}, got ${JSON.stringify(value)}.`);
  };
  if (!(Number.isFinite(s.temperature) && s.temperature >= 0)) bad('temperature', 'a number of 0 or more (0: greedy)', s.temperature);
  if (!(s.topP > 0 && s.topP <= 1)) bad('topP', 'a number above 0 and at most 1', s.topP);
  if (!(Number.isInteger(s.maxNewTokens) && s.maxNewTokens >= 1)) bad('maxNewTokens', 'a whole number of at least 1', s.maxNewTokens);
  if (!(Number.isFinite(s.adapterScale) && s.adapterScale >= 0))
    bad('adapterScale', 'a number of 0 or more (1: as trained, 0: off)', s.adapterScale);
  if (!(Number.isInteger(s.topK) && s.topK >= 1 && s.topK <= MAX_TOP_K)) bad('topK', `a whole number from 1 to ${MAX_TOP_K}`, s.topK);
  if (s.sideBySide && s.adapterId === null) {
    throw new EngineStateError('Side by side compares the base model with an adapter: choose an adapter, or turn side by side off.');
  }
  return s;
}

interface Variant {
  adapterId: string | null;
  scale: number;
}

export class ChatService {
  #stop = false;

  constructor(
    private readonly storage: () => Promise<WebtuneDb>,
    private readonly models: ModelSession,
    private readonly adapters: AdapterLibrary,
    private readonly documents: DocumentLibrary,
  ) {}

  /** Ends the generation in progress before its next token, and skips the second reply of a side-by-side turn. */
  stop(): void {
    this.#stop = true;
  }

  async send(request: ChatRequest, onEvent?: (event: ChatEvent) => void): Promise<ChatResult> {
    this.#stop = false;
    const settings = checkChatSettings(request.settings);
    const message = request.message.trim();
    if (!message) throw new EngineStateError('Write a message first.');
    const model = this.models.current();
    const db = await this.storage();
    const now = Date.now();
    const conversation: ConversationRecord = request.conversationId
      ? await db.chat.getConversation(request.conversationId)
      : { id: newId('conv'), title: message.slice(0, TITLE_CHARS), createdAt: now, updatedAt: now, model: model.info.name, turns: [] };
    if (conversation.model !== model.info.name) {
      throw new EngineStateError(
        `This conversation was held with ${conversation.model}; load that model to continue it, or start a new conversation.`,
      );
    }
    const { system, sources } = await this.#context(message, settings);
    const messages = promptMessages(conversation.turns, { system, user: message });
    const turn: ChatTurn = {
      id: newId('turn'),
      createdAt: now,
      user: message,
      system,
      sources,
      prompt: chatPrompt(model.prep, messages),
      settings,
      replies: [],
      chosen: 0,
    };
    const promptTokens = model.prep.tokenizer.encode(turn.prompt, { addSpecialTokens: false }).length;
    const positions = model.opened.config.maxPositionEmbeddings;
    if (promptTokens >= positions) {
      throw new EngineStateError(
        `This turn's prompt has ${promptTokens} tokens and ${model.info.name} reads at most ${positions}: ` +
          'give fewer sources per turn, a shorter system prompt, or start a new conversation.',
      );
    }
    onEvent?.({ type: 'turn', conversationId: conversation.id, turn: { ...turn, replies: [] } });

    const llama = await this.models.llama();
    const variants: Variant[] = settings.sideBySide
      ? [
          { adapterId: null, scale: 1 },
          { adapterId: settings.adapterId, scale: settings.adapterScale },
        ]
      : [{ adapterId: settings.adapterId, scale: settings.adapterScale }];
    for (const [index, variant] of variants.entries()) {
      if (this.#stop && index > 0) break;
      const record = variant.adapterId ? await this.adapters.recordFor(variant.adapterId, model) : null;
      const stored = variant.adapterId && variant.scale !== 0 ? await this.adapters.onGpu(variant.adapterId, model) : null;
      const adapter = stored && variant.scale !== 1 ? stored.scaledBy(variant.scale) : stored;
      onEvent?.({ type: 'reply-start', turnId: turn.id, reply: index, adapterName: record?.name ?? null, adapterScale: variant.scale });
      const seed = Math.floor(Math.random() * 2 ** 31);
      const started = performance.now();
      const result = await generateChat(llama, model.prep, adapter, messages, {
        maxNewTokens: settings.maxNewTokens,
        temperature: settings.temperature,
        topP: settings.topP,
        seed,
        shouldStop: () => this.#stop,
        onToken: (t) => onEvent?.({ type: 'token', turnId: turn.id, reply: index, text: t.text, tokens: t.count }),
      });
      const reply: ChatReply = {
        id: newId('reply'),
        createdAt: Date.now(),
        adapterId: variant.adapterId,
        adapterName: record?.name ?? null,
        adapterScale: variant.scale,
        text: result.text,
        tokens: result.ids.length,
        ms: performance.now() - started,
        stopped: result.stopped,
        seed,
        rating: null,
        correction: null,
        citations: checkCitations(result.text, sourceIds(turn)),
      };
      turn.replies.push(reply);
      onEvent?.({ type: 'reply', turnId: turn.id, reply: index, value: reply });
    }
    turn.chosen = turn.replies.length - 1;
    const saved: ConversationRecord = { ...conversation, updatedAt: Date.now(), turns: [...conversation.turns, turn] };
    await db.chat.saveConversation(saved);
    return { conversation: saved, turnId: turn.id };
  }

  async #context(message: string, settings: ChatTurnSettings): Promise<{ system: string | null; sources: ChatSource[] }> {
    const systemPrompt = settings.systemPrompt.trim();
    const hits = settings.useDocuments ? await this.documents.search(message, settings.topK) : [];
    const context = formatContext(
      hits.map((h) => h.passage),
      { systemPrompt },
    );
    if (!context) return { system: systemPrompt || null, sources: [] };
    const sources = context.sources.map((s, i) => ({
      id: s.id,
      label: s.label,
      text: s.text,
      passageId: hits[i].passage.id,
      document: hits[i].passage.document,
      score: hits[i].score,
    }));
    return { system: context.system, sources };
  }

  async list(query: ConversationQuery = {}): Promise<ConversationSummary[]> {
    const all = await (await this.storage()).chat.listConversations();
    return all.filter((c) => matchesQuery(c, query)).map(summarize);
  }

  async get(id: string): Promise<ConversationRecord> {
    return (await this.storage()).chat.getConversation(id);
  }

  async delete(id: string): Promise<void> {
    await (await this.storage()).chat.deleteConversation(id);
  }

  async rate(ref: ReplyRef, rating: Rating | null): Promise<ConversationRecord> {
    if (rating !== null && rating !== 'up' && rating !== 'down')
      throw new EngineStateError(`A rating is "up", "down" or none, got ${rating}.`);
    return this.#updateReply(ref, (reply) => ({ ...reply, rating }));
  }

  /** Keeps the generated text; the correction is the answer from now on (null removes it). */
  async correct(ref: ReplyRef, correction: string | null): Promise<ConversationRecord> {
    const text = correction?.trim() ?? null;
    if (text === '') throw new EngineStateError('Write the answer it should have been, or cancel the correction.');
    return this.#updateReply(ref, (reply, turn) => ({
      ...reply,
      correction: text,
      citations: checkCitations(text ?? reply.text, sourceIds(turn)),
    }));
  }

  /** The reply later turns go on from. */
  choose(ref: ReplyRef): Promise<ConversationRecord> {
    return this.#updateTurn(ref, (t) => ({ ...t, chosen: replyIndex(t, ref) }));
  }

  #updateReply(ref: ReplyRef, change: (reply: ChatReply, turn: ChatTurn) => ChatReply): Promise<ConversationRecord> {
    return this.#updateTurn(ref, (t) => {
      const at = replyIndex(t, ref);
      return { ...t, replies: t.replies.map((r, i) => (i === at ? change(r, t) : r)) };
    });
  }

  async #updateTurn(ref: ReplyRef, change: (turn: ChatTurn) => ChatTurn): Promise<ConversationRecord> {
    return (await this.storage()).chat.updateConversation(ref.conversationId, (c) => {
      if (!c.turns.some((t) => t.id === ref.turnId)) throw new EngineStateError(`No turn "${ref.turnId}" in this conversation; reload it.`);
      return { ...c, turns: c.turns.map((t) => (t.id === ref.turnId ? change(t) : t)) };
    });
  }

  /** Chosen conversations (every reply but those rated down and not corrected), or the whole log's rated-up and corrected replies. */
  async toDataset(request: ChatDatasetRequest): Promise<DatasetSummary> {
    const db = await this.storage();
    const name = request.name.trim();
    if (!name) throw new EngineStateError('Name the new dataset.');
    const ids = request.conversationIds;
    if (ids !== null && ids.length === 0)
      throw new EngineStateError('Choose at least one conversation, or add all rated and corrected replies.');
    const conversations = ids ? await Promise.all(ids.map((id) => db.chat.getConversation(id))) : await db.chat.listConversations();
    const rows = trainingRows(conversations, ids ? 'chosen' : 'rated');
    if (rows.length === 0) {
      throw new EngineStateError(
        ids
          ? 'These conversations have no reply to train on: every reply is rated down, stopped or empty and not corrected.'
          : 'No reply is rated up or corrected yet; rate or correct replies first, or choose conversations to add.',
      );
    }
    const record: DatasetRecord = {
      id: newId('ds'),
      name,
      createdAt: Date.now(),
      format: 'messages',
      rowCount: rows.length,
      rows,
      invalidLineCount: 0,
      sourceFileName: `chat log (${conversations.length} conversation${conversations.length === 1 ? '' : 's'})`,
    };
    await db.saveDataset(record);
    const { rows: _, ...summary } = record;
    return summary;
  }

  async exportLog(ids: string[] | null): Promise<string> {
    const db = await this.storage();
    return logJsonl(ids ? await Promise.all(ids.map((id) => db.chat.getConversation(id))) : await db.chat.listConversations());
  }
}

const sourceIds = (turn: Pick<ChatTurn, 'sources'>) => turn.sources.map((s) => s.id);

function replyIndex(turn: ChatTurn, ref: ReplyRef): number {
  const at = turn.replies.findIndex((r) => r.id === ref.replyId);
  if (at < 0) throw new EngineStateError(`No reply "${ref.replyId}" in this turn; reload the conversation.`);
  return at;
}

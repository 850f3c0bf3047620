/**
 * The chat records of the database (version 2): conversations, the documents chat answers from, and
 * the passage index over them. Each method is one transaction of WebtuneDb, so a document and the
 * index that holds its passages are written together or not at all.
 */
import type { SerializedIndex } from '../rag/search-index';
import type { WebtuneDb } from './db';
import { found } from './errors';
import type { ConversationRecord, DocumentRecord } from './records';

/** The key of the one entry of the documentIndex store. */
export const DOCUMENT_INDEX_KEY = 'passages';

export class ChatStore {
  constructor(private readonly db: WebtuneDb) {}

  async saveConversation(conversation: ConversationRecord): Promise<void> {
    await this.db.writeTx(
      ['conversations'],
      () => `the conversation "${conversation.title}"`,
      (tx) => tx.store.put(conversation),
    );
  }

  async getConversation(id: string): Promise<ConversationRecord> {
    return this.db.readTx(['conversations'], async (tx) => found('conversation', id, await tx.store.get(id)));
  }

  /** Most recently changed first. */
  async listConversations(): Promise<ConversationRecord[]> {
    return this.db.readTx(['conversations'], async (tx) => (await tx.store.index('updatedAt').getAll()).reverse());
  }

  /** Reads the conversation, applies `change` and stores the result in one transaction; returns what was stored. */
  async updateConversation(id: string, change: (conversation: ConversationRecord) => ConversationRecord): Promise<ConversationRecord> {
    let label = `conversation ${id}`;
    return this.db.writeTx(
      ['conversations'],
      () => `the changes to ${label}`,
      async (tx) => {
        const conversation = found('conversation', id, await tx.store.get(id));
        label = `the conversation "${conversation.title}"`;
        const updated = { ...change(conversation), id, updatedAt: Date.now() };
        await tx.store.put(updated);
        return updated;
      },
    );
  }

  async deleteConversation(id: string): Promise<void> {
    await this.db.writeTx(
      ['conversations'],
      () => `the removal of conversation ${id}`,
      (tx) => tx.store.delete(id),
    );
  }

  /** The document and the index that now holds its passages, together. */
  async saveDocument(document: DocumentRecord, index: SerializedIndex): Promise<void> {
    await this.db.writeTx(
      ['documents', 'documentIndex'],
      () => `the document "${document.name}"`,
      async (tx) => {
        await tx.objectStore('documents').put(document);
        await tx.objectStore('documentIndex').put(index, DOCUMENT_INDEX_KEY);
      },
    );
  }

  /** Removes the document and stores the index without its passages, together. */
  async deleteDocument(name: string, index: SerializedIndex): Promise<void> {
    await this.db.writeTx(
      ['documents', 'documentIndex'],
      () => `the removal of document "${name}"`,
      async (tx) => {
        found('document', name, await tx.objectStore('documents').get(name));
        await tx.objectStore('documents').delete(name);
        await tx.objectStore('documentIndex').put(index, DOCUMENT_INDEX_KEY);
      },
    );
  }

  /** In the order they were added. */
  async listDocuments(): Promise<DocumentRecord[]> {
    return this.db.readTx(['documents'], (tx) => tx.store.index('addedAt').getAll());
  }

  /** Null before the first document is added. */
  async getDocumentIndex(): Promise<SerializedIndex | null> {
    return this.db.readTx(['documentIndex'], async (tx) => (await tx.store.get(DOCUMENT_INDEX_KEY)) ?? null);
  }
}

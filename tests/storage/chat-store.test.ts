import 'fake-indexeddb/auto';
import { openDB } from 'idb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PassageIndex } from '../../src/rag/search-index';
import { splitDocument } from '../../src/rag/passages';
import { DB_VERSION } from '../../src/storage/db';
import { NotFoundError, StorageFullError } from '../../src/storage/errors';
import {
  adapter,
  checkpoint,
  closeTestDbs,
  conversation,
  dataset,
  documentRecord,
  failNextPut,
  freshDbName,
  modelFile,
  openTestDb,
  run,
} from './fixtures';

afterEach(() => {
  vi.restoreAllMocks();
  closeTestDbs();
});

/**
 * The version-1 schema as webtune shipped it, written out here rather than taken from db.ts, so the
 * test keeps meaning "a database made by the old version" whatever the upgrade code becomes.
 */
async function createVersion1(name: string): Promise<void> {
  const v1 = await openDB(name, 1, {
    upgrade(db) {
      db.createObjectStore('datasets', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
      db.createObjectStore('runs', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
      db.createObjectStore('checkpoints', { keyPath: ['runId', 'step'] });
      const adapters = db.createObjectStore('adapters', { keyPath: 'id' });
      adapters.createIndex('createdAt', 'createdAt');
      adapters.createIndex('runId', 'runId');
      db.createObjectStore('modelFiles', { keyPath: ['modelId', 'path'] });
    },
  });
  await v1.put('datasets', dataset());
  await v1.put('datasets', dataset({ id: 'ds-2', name: 'later', createdAt: 5_000 }));
  await v1.put('runs', run({ lastCheckpointStep: 10 }));
  await v1.put('checkpoints', checkpoint('run-1', 10));
  await v1.put('adapters', adapter());
  await v1.put('modelFiles', modelFile('org/model', 'config.json', '{"model_type":"llama"}'));
  v1.close();
}

function indexOf(...docs: [string, string][]) {
  const index = PassageIndex.create();
  for (const [name, text] of docs) index.addDocument(splitDocument(name, text));
  return index;
}

describe('upgrade from version 1', () => {
  it('adds the chat stores and keeps every version-1 record as it was', async () => {
    const name = freshDbName();
    await createVersion1(name);

    const db = await openTestDb(name);
    expect(await db.getDataset('ds-1')).toEqual(dataset());
    expect((await db.listDatasets()).map((d) => d.id)).toEqual(['ds-2', 'ds-1']);
    expect(await db.getRun('run-1')).toEqual(run({ lastCheckpointStep: 10 }));
    expect(await db.latestCheckpoint('run-1')).toEqual(checkpoint('run-1', 10));
    expect(await db.getAdapter('ad-1')).toEqual(adapter());
    expect((await db.listAdapters()).map((a) => a.id)).toEqual(['ad-1']);
    expect(await (await db.modelFiles.get('org/model', 'config.json'))?.blob.text()).toBe('{"model_type":"llama"}');
    // The old indexes still answer: deleting the run detaches its adapter through the runId index.
    await db.deleteRun('run-1');
    expect((await db.getAdapter('ad-1')).runId).toBeNull();

    expect(await db.chat.listConversations()).toEqual([]);
    expect(await db.chat.listDocuments()).toEqual([]);
    expect(await db.chat.getDocumentIndex()).toBeNull();
    await db.chat.saveConversation(conversation());
    expect(await db.chat.getConversation('conv-1')).toEqual(conversation());
    db.close();

    const raw = await openDB(name);
    try {
      expect(raw.version).toBe(DB_VERSION);
      expect([...raw.objectStoreNames]).toEqual(expect.arrayContaining(['conversations', 'documents', 'documentIndex']));
    } finally {
      raw.close();
    }
  });
});

describe('conversations', () => {
  it('round-trips, lists the most recently changed first, updates in place and deletes', async () => {
    const db = await openTestDb(freshDbName());
    await db.chat.saveConversation(conversation());
    await db.chat.saveConversation(conversation({ id: 'conv-2', title: 'later', updatedAt: 9_000 }));
    expect(await db.chat.getConversation('conv-1')).toEqual(conversation());
    expect((await db.chat.listConversations()).map((c) => c.id)).toEqual(['conv-2', 'conv-1']);

    const updated = await db.chat.updateConversation('conv-1', (c) => ({
      ...c,
      turns: c.turns.map((t) => ({ ...t, replies: t.replies.map((r) => ({ ...r, rating: 'up' as const })) })),
    }));
    expect(updated.turns[0].replies[0].rating).toBe('up');
    expect(updated.updatedAt).toBeGreaterThan(9_000);
    expect(await db.chat.getConversation('conv-1')).toEqual(updated);
    expect((await db.chat.listConversations()).map((c) => c.id)).toEqual(['conv-1', 'conv-2']);

    await expect(db.chat.updateConversation('ghost', (c) => c)).rejects.toThrow(NotFoundError);
    await expect(db.chat.getConversation('ghost')).rejects.toThrow(/No conversation "ghost"/);
    await db.chat.deleteConversation('conv-1');
    expect((await db.chat.listConversations()).map((c) => c.id)).toEqual(['conv-2']);
  });

  it('keeps the stored conversation when its update cannot be written', async () => {
    const db = await openTestDb(freshDbName());
    await db.chat.saveConversation(conversation());
    failNextPut('conversations');
    const error = await db.chat.updateConversation('conv-1', (c) => ({ ...c, title: 'renamed' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageFullError);
    expect((error as Error).message).toMatch(/the changes to the conversation "How long do refunds take\?" was not saved/);
    expect(await db.chat.getConversation('conv-1')).toEqual(conversation());
  });
});

describe('documents and their index', () => {
  it('stores each document with the index that holds its passages, and removes both together', async () => {
    const name = freshDbName();
    const db = await openTestDb(name);
    const one = indexOf(['faq.md', '# Refunds\n\nRefunds take 5 days.']);
    await db.chat.saveDocument(documentRecord('faq.md'), one.toJSON());
    const two = indexOf(['faq.md', '# Refunds\n\nRefunds take 5 days.'], ['plans.txt', 'The Team plan costs 10 euros.']);
    await db.chat.saveDocument(documentRecord('plans.txt', { addedAt: 8_000, format: 'text' }), two.toJSON());
    expect((await db.chat.listDocuments()).map((d) => d.name)).toEqual(['faq.md', 'plans.txt']);
    db.close();

    // As after a reload: the stored index searches like the one that was saved.
    const reopened = await openTestDb(name);
    const restored = PassageIndex.fromJSON(await reopened.chat.getDocumentIndex());
    expect(restored.documents()).toEqual(['faq.md', 'plans.txt']);
    expect(restored.search('team plan euros')[0].passage.document).toBe('plans.txt');

    restored.removeDocument('faq.md');
    await reopened.chat.deleteDocument('faq.md', restored.toJSON());
    expect((await reopened.chat.listDocuments()).map((d) => d.name)).toEqual(['plans.txt']);
    expect(PassageIndex.fromJSON(await reopened.chat.getDocumentIndex()).documents()).toEqual(['plans.txt']);
    await expect(reopened.chat.deleteDocument('faq.md', restored.toJSON())).rejects.toThrow(NotFoundError);
  });

  it('stores neither the document nor the index when the index cannot be written', async () => {
    const db = await openTestDb(freshDbName());
    const one = indexOf(['faq.md', 'Refunds take 5 days.']);
    await db.chat.saveDocument(documentRecord('faq.md'), one.toJSON());
    const two = indexOf(['faq.md', 'Refunds take 5 days.'], ['plans.txt', 'The Team plan costs 10 euros.']);
    failNextPut('documentIndex');
    await expect(db.chat.saveDocument(documentRecord('plans.txt'), two.toJSON())).rejects.toThrow(/the document "plans.txt" was not saved/);
    expect((await db.chat.listDocuments()).map((d) => d.name)).toEqual(['faq.md']);
    expect(PassageIndex.fromJSON(await db.chat.getDocumentIndex()).documents()).toEqual(['faq.md']);
  });
});

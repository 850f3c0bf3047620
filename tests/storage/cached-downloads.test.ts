import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { listCachedDownloads, removeCachedDownload } from '../../src/storage/cached-downloads';
import { FOLDERS } from '../../src/storage/folder-handles';
import { closeTestDbs, freshDbName, modelFile, openTestDb } from './fixtures';

afterEach(() => {
  closeTestDbs();
});

/** Two Hub models (one only partly downloaded, in IndexedDB chunks), a model folder URL, a dataset and a remembered folder. */
async function storedDownloads() {
  const db = await openTestDb(freshDbName());
  await db.modelFiles.put(modelFile('org/m', 'config.json', '{"model_type":"llama"}'));
  await db.modelFiles.put(modelFile('org/m', 'model.safetensors', 'w'.repeat(1000)));
  await db.modelFiles.put({
    ...modelFile('org/big', 'model.safetensors\u0000000000', 'c'.repeat(300)),
    chunkOf: 'model.safetensors',
    chunk: 0,
  });
  await db.modelFiles.put(modelFile('url:https://example.org/models/tiny/', 'config.json', '{}'));
  await db.modelFiles.put(modelFile('dataset:hub:org/chats', 'manifest.json', '["a.jsonl"]'));
  await db.modelFiles.put({
    ...modelFile(FOLDERS, 'my-model', ''),
    directory: { kind: 'directory', name: 'my-model' } as unknown as FileSystemDirectoryHandle,
  });
  return db;
}

describe('cached downloads', () => {
  it('lists every download with its kind, finished files and bytes (partial chunks included), largest first, without folders', async () => {
    const db = await storedDownloads();
    expect(await listCachedDownloads(db)).toEqual([
      { id: 'org/m', kind: 'hub', label: 'org/m', fileCount: 2, bytes: 1022 },
      { id: 'org/big', kind: 'hub', label: 'org/big', fileCount: 0, bytes: 300 },
      { id: 'dataset:hub:org/chats', kind: 'dataset', label: 'hub:org/chats', fileCount: 1, bytes: 11 },
      { id: 'url:https://example.org/models/tiny/', kind: 'url', label: 'https://example.org/models/tiny/', fileCount: 1, bytes: 2 },
    ]);
  });

  it('removes one download and nothing else, and refuses to treat a remembered folder as one', async () => {
    const db = await storedDownloads();
    await removeCachedDownload(db, 'org/m');
    expect(await db.modelFiles.list('org/m')).toEqual([]);
    expect((await listCachedDownloads(db)).map((d) => d.id)).toEqual([
      'org/big',
      'dataset:hub:org/chats',
      'url:https://example.org/models/tiny/',
    ]);
    await expect(removeCachedDownload(db, FOLDERS)).rejects.toThrow(/remembered folders are not downloads/);
    expect((await db.modelFiles.list(FOLDERS)).map((r) => r.path)).toEqual(['my-model']);
    // Without OPFS (Node) there are no interrupted OPFS downloads to remove; it changes nothing.
    await removeCachedDownload(db, null);
    expect(await listCachedDownloads(db)).toHaveLength(3);
  });
});

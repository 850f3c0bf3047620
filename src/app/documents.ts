/**
 * The documents chat answers from: .txt, .md and .html files split into passages (src/rag) and
 * searched with one BM25 index over all of them. The index lives in memory once read and in
 * IndexedDB beside the document records; every change writes both in one transaction, and the
 * in-memory index is put back when that write fails, so the two never disagree.
 */
import { decodeDocument, documentFormat, splitDocument } from '../rag/passages';
import { PassageIndex, type SearchHit } from '../rag/search-index';
import type { DocumentRecord, WebtuneDb } from '../storage/db';

export class DocumentLibrary {
  #index: Promise<PassageIndex> | null = null;

  constructor(private readonly storage: () => Promise<WebtuneDb>) {}

  async list(): Promise<DocumentRecord[]> {
    return (await this.storage()).chat.listDocuments();
  }

  /**
   * Reads, splits and indexes one file. Refused with a DocumentError (PDF and other types, binary
   * files, no text) or a PassageIndexError (a document of that name is stored already); nothing is
   * stored then.
   */
  async add(file: Blob, fileName: string): Promise<DocumentRecord> {
    const format = documentFormat(fileName);
    const text = decodeDocument(fileName, new Uint8Array(await file.arrayBuffer()));
    const passages = splitDocument(fileName, text);
    const index = await this.#loaded();
    index.addDocument(passages);
    const record: DocumentRecord = { name: fileName, format, addedAt: Date.now(), chars: text.length, passages: passages.length };
    try {
      await (await this.storage()).chat.saveDocument(record, index.toJSON());
    } catch (error) {
      index.removeDocument(fileName);
      throw error;
    }
    return record;
  }

  async remove(name: string): Promise<void> {
    const index = await this.#loaded();
    const passages = index.passages(name);
    index.removeDocument(name);
    try {
      await (await this.storage()).chat.deleteDocument(name, index.toJSON());
    } catch (error) {
      if (passages.length > 0) index.addDocument(passages);
      throw error;
    }
  }

  /** The best passages for `query`, best first; none while no document is stored. */
  async search(query: string, topK: number): Promise<SearchHit[]> {
    return (await this.#loaded()).search(query, topK);
  }

  #loaded(): Promise<PassageIndex> {
    this.#index ??= (async () => {
      const stored = await (await this.storage()).chat.getDocumentIndex();
      return stored ? PassageIndex.fromJSON(stored) : PassageIndex.create();
    })().catch((error) => {
      this.#index = null;
      throw error;
    });
    return this.#index;
  }
}

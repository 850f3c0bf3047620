/**
 * BM25 full-text index over passages (MiniSearch). Terms are MiniSearch's defaults: the text split
 * at spaces and punctuation, lowercased, no stemming; queries match whole terms only (no prefix or
 * fuzzy matching), so the same query always ranks the same passages the same way. The passage text
 * and its section heading are indexed; a heading match counts twice (HEADING_BOOST), since a
 * section titled "Refunds" is about refunds even where its sentences say "money back".
 *
 * The index serialises to a plain object holding strings and arrays (SerializedIndex), which
 * IndexedDB stores as it is and JSON round-trips.
 */
import MiniSearch from 'minisearch';
import type { Passage } from './passages';

export const HEADING_BOOST = 2;
/** How many passages a chat turn gets by default. */
export const DEFAULT_TOP_K = 3;
export const SERIALIZED_INDEX_VERSION = 1;

export interface SearchHit {
  passage: Passage;
  /** MiniSearch's BM25+ score (k 1.2, b 0.7, d 0.5), heading matches boosted; higher is better. */
  score: number;
  /** The query terms found in the passage. */
  terms: string[];
}

export interface SerializedIndex {
  version: typeof SERIALIZED_INDEX_VERSION;
  passages: Passage[];
  /** MiniSearch's own JSON of the index. */
  index: string;
}

/** A document added twice, or a stored index that cannot be read; the message says what to do. */
export class PassageIndexError extends Error {
  override name = 'PassageIndexError';
}

const OPTIONS = { fields: ['text', 'heading'], idField: 'id' } as const;

export class PassageIndex {
  readonly #search: MiniSearch<Passage>;
  readonly #passages = new Map<string, Passage>();

  private constructor(search: MiniSearch<Passage>, passages: Passage[]) {
    this.#search = search;
    for (const p of passages) this.#passages.set(p.id, p);
  }

  static create(): PassageIndex {
    return new PassageIndex(new MiniSearch<Passage>({ ...OPTIONS, fields: [...OPTIONS.fields] }), []);
  }

  static fromJSON(stored: unknown): PassageIndex {
    const bad = (what: string): never => {
      throw new PassageIndexError(`The stored document index cannot be read (${what}); add the documents again to rebuild it.`);
    };
    if (typeof stored !== 'object' || stored === null) return bad('not an object');
    const { version, passages, index } = stored as Partial<SerializedIndex>;
    if (version !== SERIALIZED_INDEX_VERSION) return bad(`version ${JSON.stringify(version)}, expected ${SERIALIZED_INDEX_VERSION}`);
    if (!Array.isArray(passages) || typeof index !== 'string') return bad('passages or index missing');
    let search: MiniSearch<Passage>;
    try {
      search = MiniSearch.loadJSON<Passage>(index, { ...OPTIONS, fields: [...OPTIONS.fields] });
    } catch (err) {
      return bad((err as Error).message);
    }
    if (search.documentCount !== passages.length) return bad(`${search.documentCount} indexed passages for ${passages.length} stored`);
    for (const p of passages) if (!search.has(p.id)) bad(`passage ${JSON.stringify(p.id)} is not indexed`);
    return new PassageIndex(search, passages);
  }

  toJSON(): SerializedIndex {
    return { version: SERIALIZED_INDEX_VERSION, passages: [...this.#passages.values()], index: JSON.stringify(this.#search) };
  }

  get size(): number {
    return this.#passages.size;
  }

  /** The indexed file names, in the order they were added. */
  documents(): string[] {
    return [...new Set([...this.#passages.values()].map((p) => p.document))];
  }

  passages(document?: string): Passage[] {
    const all = [...this.#passages.values()];
    return document === undefined ? all : all.filter((p) => p.document === document);
  }

  /** Adds one document's passages (splitDocument's output). */
  addDocument(passages: Passage[]): void {
    const names = new Set(passages.map((p) => p.document));
    for (const name of names) {
      if (this.documents().includes(name)) {
        throw new PassageIndexError(`"${name}" is already indexed; remove it first, or rename the new file.`);
      }
    }
    const ids = new Set(passages.map((p) => p.id));
    if (ids.size !== passages.length) throw new PassageIndexError('two passages have the same id; split each document once');
    this.#search.addAll(passages);
    for (const p of passages) this.#passages.set(p.id, p);
  }

  /** Removes a document's passages; returns how many there were. */
  removeDocument(document: string): number {
    const gone = this.passages(document);
    for (const p of gone) {
      this.#search.discard(p.id);
      this.#passages.delete(p.id);
    }
    return gone.length;
  }

  /** The best passages for a query, best first; ties keep the order the passages were added in. */
  search(query: string, topK = DEFAULT_TOP_K): SearchHit[] {
    if (!Number.isInteger(topK) || topK < 1) throw new RangeError(`topK must be a positive whole number, got ${topK}`);
    const order = new Map([...this.#passages.keys()].map((id, i) => [id, i]));
    return this.#search
      .search(query, { boost: { heading: HEADING_BOOST }, prefix: false, fuzzy: false })
      .sort((a, b) => b.score - a.score || order.get(a.id)! - order.get(b.id)!)
      .slice(0, topK)
      .map((r) => ({ passage: this.#passages.get(r.id)!, score: r.score, terms: [...r.terms] }));
  }
}

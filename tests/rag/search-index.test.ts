import { describe, expect, it } from 'vitest';
import { splitDocument } from '../../src/rag/passages';
import { PassageIndex, PassageIndexError, SERIALIZED_INDEX_VERSION } from '../../src/rag/search-index';

const FAQ = `# Billing

Annual plans are refundable in full within 30 days of purchase.

Monthly plans renew automatically on the purchase date.

# Security

Two-factor authentication can be enforced by workspace admins for every member.

# Data

EU workspaces store data in Frankfurt, and backups never leave the region.
`;

const GUIDE = `<h1>Admin guide</h1>
<h2>API keys</h2><p>To rotate an API key, open Settings, then API Keys, and click Rotate.
The old key keeps working for a 24 hour grace period.</p>
<h2>Members</h2><p>Invite members from the People page; each invitation expires after seven days.</p>`;

function index(): PassageIndex {
  const idx = PassageIndex.create();
  idx.addDocument(splitDocument('faq.md', FAQ));
  idx.addDocument(splitDocument('guide.html', GUIDE));
  return idx;
}

describe('PassageIndex', () => {
  it('finds the passage that holds the query words and ranks it first among distractors', () => {
    const idx = index();
    expect(idx.size).toBe(5);
    const hits = idx.search('how long does the old API key keep working after I rotate it?');
    expect(hits[0].passage).toMatchObject({ document: 'guide.html', heading: 'Admin guide > API keys' });
    expect(hits[0].passage.text).toContain('24 hour grace period');
    expect(hits[0].terms).toEqual(expect.arrayContaining(['rotate', 'key', 'old']));
    for (let i = 1; i < hits.length; i++) expect(hits[i].score).toBeLessThanOrEqual(hits[i - 1].score);
    expect(hits[0].score).toBeGreaterThan(hits[1]?.score ?? 0);

    const refund = idx.search('refundable annual plans', 1);
    expect(refund).toHaveLength(1);
    expect(refund[0].passage.id).toBe('faq.md#0');
    expect(idx.search('Frankfurt')[0].passage.heading).toBe('Data');
  });

  it('boosts a section heading match', () => {
    const idx = PassageIndex.create();
    idx.addDocument(
      splitDocument(
        'a.md',
        '# Shipping\n\nParcels leave the warehouse on weekdays.\n\n# Returns\n\nShipping labels are printed at the desk.',
      ),
    );
    expect(idx.search('shipping')[0].passage.heading).toBe('Shipping');
  });

  it('returns nothing for words it does not hold, and at most topK hits', () => {
    const idx = index();
    expect(idx.search('zebra quantum')).toEqual([]);
    expect(idx.search('')).toEqual([]);
    expect(idx.search('the', 2).length).toBeLessThanOrEqual(2);
    expect(() => idx.search('key', 0)).toThrow(RangeError);
  });

  it('saves to a plain object that JSON and structured cloning keep, and loads back with the same results', () => {
    const idx = index();
    const stored = idx.toJSON();
    expect(stored.version).toBe(SERIALIZED_INDEX_VERSION);
    expect(typeof stored.index).toBe('string');
    for (const copy of [JSON.parse(JSON.stringify(stored)), structuredClone(stored)]) {
      const loaded = PassageIndex.fromJSON(copy);
      expect(loaded.size).toBe(idx.size);
      expect(loaded.documents()).toEqual(['faq.md', 'guide.html']);
      for (const query of ['rotate the API key', 'two-factor authentication admins', 'invitation expires']) {
        expect(loaded.search(query)).toEqual(idx.search(query));
      }
    }
  });

  it('removes and re-adds a document, and refuses the same document twice', () => {
    const idx = index();
    expect(() => idx.addDocument(splitDocument('faq.md', FAQ))).toThrow(PassageIndexError);
    expect(() => idx.addDocument(splitDocument('faq.md', FAQ))).toThrow(
      '"faq.md" is already indexed; remove it first, or rename the new file.',
    );
    expect(idx.removeDocument('faq.md')).toBe(3);
    expect(idx.search('Frankfurt')).toEqual([]);
    expect(idx.documents()).toEqual(['guide.html']);
    const reloaded = PassageIndex.fromJSON(JSON.parse(JSON.stringify(idx.toJSON())));
    expect(reloaded.search('Frankfurt')).toEqual([]);
    expect(reloaded.search('rotate')[0].passage.document).toBe('guide.html');
    reloaded.addDocument(splitDocument('faq.md', FAQ));
    expect(reloaded.search('Frankfurt')[0].passage.document).toBe('faq.md');
  });

  it('refuses a stored index it cannot read, with what to do', () => {
    const stored = index().toJSON();
    expect(() => PassageIndex.fromJSON(null)).toThrow(/add the documents again to rebuild it/);
    expect(() => PassageIndex.fromJSON({ ...stored, version: 2 })).toThrow(/version 2, expected 1/);
    expect(() => PassageIndex.fromJSON({ ...stored, index: '{' })).toThrow(PassageIndexError);
    expect(() => PassageIndex.fromJSON({ ...stored, passages: stored.passages.slice(1) })).toThrow(/5 indexed passages for 4 stored/);
  });
});

import 'fake-indexeddb/auto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import type { ImportProgress } from '../../src/app/api';
import { ImportCancelledError, MAX_LISTED_ERRORS } from '../../src/app/dataset-import';
import { WebtuneEngine } from '../../src/app/engine';
import { parseImportBytes } from '../../src/data/import';
import { SHARED } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';

/** Storage only: imports need no GPU, so `init` (which asks for a device) is not called. */
function engine() {
  const dbName = freshDbName();
  return { engine: new WebtuneEngine({ dbName }), dbName };
}

async function storedCounts(dbName: string): Promise<{ datasets: number; chunks: number; pending: number }> {
  const raw = await openDB(dbName);
  try {
    return {
      datasets: await raw.count('datasets'),
      chunks: await raw.count('datasetChunks'),
      pending: await raw.count('pendingImports'),
    };
  } finally {
    raw.close();
  }
}

const blob = (...parts: (string | Uint8Array)[]) => new Blob(parts as BlobPart[]);
const line = (text: string) => `${JSON.stringify({ text })}\n`;

/** A JSONL file of `rows` text rows of about `chars` characters each, made in memory. */
function bigJsonl(rows: number, chars: number): Blob {
  const parts: string[] = [];
  for (let i = 0; i < rows; i++) parts.push(line(`story ${i} ${'lorem ipsum '.repeat(chars / 12)}`));
  return blob(...parts);
}

describe('streamed dataset imports', () => {
  it('report every file of ../shared/data exactly as the whole-file parser does, and store the same rows', async () => {
    const dirs = [join(SHARED, 'data'), join(SHARED, 'data/bad')];
    const files = dirs.flatMap((dir) => readdirSync(dir).flatMap((f) => (/\.jsonl$/.test(f) ? [join(dir, f)] : [])));
    expect(files.length).toBeGreaterThan(8);
    const { engine: e } = engine();
    for (const file of files) {
      const bytes = readFileSync(file);
      const expected = parseImportBytes(bytes, { fileName: file });
      const preview = await e.importDataset('x', blob(bytes), file);
      expect(
        {
          lines: preview.totalLines,
          blank: preview.skippedBlank,
          errors: preview.errors,
          formats: preview.formats,
          format: preview.format,
        },
        file,
      ).toEqual({
        lines: expected.totalLines,
        blank: expected.skippedBlank,
        errors: expected.errors,
        formats: expected.formats,
        format: expected.format,
      });
      expect(preview.validRows).toBe(expected.rows.length);
      if (expected.rows.length === 0) continue;
      const summary = await e.commitDataset(preview.previewId);
      expect((await e.listDatasets()).find((d) => d.id === summary.id)?.rowCount).toBe(expected.rows.length);
    }
  });

  it('stores a large file in several chunks while reading it, with progress, and lists it only once committed', async () => {
    const { engine: e, dbName } = engine();
    const file = bigJsonl(12_000, 1000);
    const progress: ImportProgress[] = [];
    const preview = await e.importDataset('big', file, 'big.jsonl', (p) => progress.push(p));
    expect(preview).toMatchObject({ validRows: 12_000, errorCount: 0, totalLines: 12_000 });
    expect(progress.at(-1)).toEqual({ bytesRead: file.size, totalBytes: file.size, lines: 12_000, rows: 12_000, invalid: 0 });
    expect(progress.map((p) => p.bytesRead)).toEqual([...progress.map((p) => p.bytesRead)].sort((a, b) => a - b));
    const staged = await storedCounts(dbName);
    expect(staged).toMatchObject({ datasets: 0, pending: 1 });
    expect(staged.chunks).toBeGreaterThanOrEqual(3);
    expect(await e.listDatasets()).toEqual([]);

    const summary = await e.commitDataset(preview.previewId, 'big one');
    expect(await storedCounts(dbName)).toEqual({ datasets: 1, chunks: staged.chunks, pending: 0 });
    expect(summary).toMatchObject({ name: 'big one', rowCount: 12_000, invalidLineCount: 0 });
    const analysis = await e.analyzeDataset(summary.id);
    expect(analysis.conversations).toBe(12_000);
    expect(analysis.perConversation).toHaveLength(500);
  });

  it('can be cancelled in the middle, leaving nothing stored; a discarded preview leaves nothing either', async () => {
    const { engine: e, dbName } = engine();
    const file = bigJsonl(30_000, 1000);
    let seen = 0;
    const error = await e
      .importDataset('big', file, 'big.jsonl', (p) => {
        seen = p.bytesRead;
        if (p.bytesRead > file.size / 4) void e.cancelDatasetImport();
      })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ImportCancelledError);
    expect((error as Error).message).toBe('The import of big.jsonl was cancelled; nothing of it is stored.');
    expect(seen).toBeLessThan(file.size);
    expect(await storedCounts(dbName)).toEqual({ datasets: 0, chunks: 0, pending: 0 });

    const preview = await e.importDataset('small', bigJsonl(5000, 1000), 'small.jsonl');
    expect((await storedCounts(dbName)).chunks).toBeGreaterThan(0);
    await e.discardDataset(preview.previewId);
    expect(await storedCounts(dbName)).toEqual({ datasets: 0, chunks: 0, pending: 0 });
    await expect(e.commitDataset(preview.previewId)).rejects.toThrow(/preview is gone/);
  });

  it('reports hostile lines by number with the reason, and keeps the valid ones', async () => {
    const { engine: e } = engine();
    const deepList = `${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
    const deepContent = `{"messages": [{"role": "user", "content": ${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}]}\n`;
    const deepText = `{"text": ${'['.repeat(50_000)}"x"${']'.repeat(50_000)}}\n`;
    const file = blob(
      line('first'),
      `{"text": "${'y'.repeat(20 * 2 ** 20)}"}\n`,
      deepList,
      deepContent,
      deepText,
      new Uint8Array([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x0a]),
      '{"text": "nul\u0000byte"}\n',
      new Uint8Array([0x7b, 0, 0x22, 0, 0x74, 0, 0x7d, 0, 0x0a]),
      line('last'),
    );
    const preview = await e.importDataset('hostile', file, 'hostile.jsonl');
    expect(preview.validRows).toBe(2);
    expect(preview.sample.map((r) => (r.kind === 'text' ? r.text : ''))).toEqual(['first', 'last']);
    const reasons = preview.errors.map((err) => [err.line, err.reason]);
    expect(reasons).toEqual([
      [2, expect.stringMatching(/^too long: the line is 20\.0 MiB, more than the 8 MiB one row may have; split it into several rows/)],
      [3, expect.stringMatching(/^not an object: the line is an array/)],
      [4, expect.stringMatching(/content/)],
      [5, expect.stringMatching(/"text"/)],
      [6, 'not text (binary data?): the line is not valid UTF-8'],
      [7, 'not text (binary data?): control character U+0000 at column 14'],
      [8, expect.stringMatching(/^not UTF-8: the line is UTF-16 text/)],
    ]);
    expect(preview.errors.every((err) => err.excerpt.length <= 81)).toBe(true);
  });

  it('reads a UTF-16 file with or without its byte-order mark, in either byte order', async () => {
    const { engine: e } = engine();
    const text = `${line('Zog flew.')}${line('naïve café 🐉')}`;
    const encode = (order: 'le' | 'be', bom: boolean) => {
      const out = new Uint8Array((text.length + (bom ? 1 : 0)) * 2);
      const view = new DataView(out.buffer);
      if (bom) view.setUint16(0, 0xfeff, order === 'le');
      for (let i = 0; i < text.length; i++) view.setUint16((i + (bom ? 1 : 0)) * 2, text.charCodeAt(i), order === 'le');
      return out;
    };
    for (const order of ['le', 'be'] as const) {
      for (const bom of [true, false]) {
        const preview = await e.importDataset('wide', blob(encode(order, bom)), 'wide.jsonl');
        expect({ order, bom, rows: preview.validRows, errors: preview.errorCount }).toEqual({ order, bom, rows: 2, errors: 0 });
        expect(preview.sample[1]).toEqual({ kind: 'text', text: 'naïve café 🐉' });
      }
    }
  });

  it('lists the first 1,000 refused lines and counts all of them', async () => {
    const { engine: e } = engine();
    const preview = await e.importDataset('junk', blob('not json\n'.repeat(5000), line('ok')), 'junk.jsonl');
    expect(preview).toMatchObject({ validRows: 1, errorCount: 5000 });
    expect(preview.errors).toHaveLength(MAX_LISTED_ERRORS);
    expect(preview.errors.at(-1)!.line).toBe(MAX_LISTED_ERRORS);
  });

  it('refuses a JSON document too large to read whole, before reading it', async () => {
    const { engine: e } = engine();
    const huge = new Blob(['[', new Uint8Array(300 * 2 ** 20 - 2), ']']);
    await expect(e.importDataset('huge', huge, 'export.json')).rejects.toThrow(
      /export\.json is 300 MiB; a JSON document is read whole, so webtune takes at most 256 MiB of one\. Save the rows as JSONL/,
    );
  });
});

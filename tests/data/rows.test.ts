import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { parseDatasetBytes } from '../../src/data/import';
import { isParquet, ParquetReadError } from '../../src/data/parquet';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('a JSON document holding a list of rows', () => {
  const text = '[\n  {"text": "Once upon a time"},\n  {"prompt": "Q", "completion": "A"},\n  {"nope": 1},\n  "a string"\n]\n';

  it('reads each entry like a JSONL line and reports the refused ones by entry and starting line', async () => {
    const { report, container } = await parseDatasetBytes(bytes(text), { fileName: 'rows.json' });
    expect(container).toBe('json');
    expect(report.totalEntries).toBe(4);
    expect(report.rows).toEqual([
      { kind: 'text', text: 'Once upon a time' },
      { kind: 'completion', prompt: 'Q', completion: 'A' },
    ]);
    expect(report.errors.map((e) => [e.entry, e.line])).toEqual([
      [3, 4],
      [4, 5],
    ]);
    expect(report.errors[0].reason).toMatch(/^unknown format: found keys "nope"/);
    expect(report.errors[1].reason).toBe(
      'not an object: the entry is a string; each entry must be one JSON object such as {"text": "..."}',
    );
  });

  it('still reads JSONL line by line', async () => {
    const { report, container } = await parseDatasetBytes(bytes('{"text": "a"}\n{"text": 3}\n'), { fileName: 'rows.jsonl' });
    expect(container).toBe('jsonl');
    expect(report.rows).toHaveLength(1);
    expect(report.errors.map((e) => e.line)).toEqual([2]);
  });
});

describe('Parquet tables', () => {
  it('reads string columns and nested message lists, and reports each refused row with its number', async () => {
    const file = new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'text', data: ['Zog the dragon', null, 'Lily'], type: 'STRING' },
          { name: 'id', data: [1n, 2n, 3n], type: 'INT64' },
        ],
      }),
    );
    expect(isParquet(file)).toBe(true);
    const { report, container } = await parseDatasetBytes(file, { fileName: 'train.parquet' });
    expect(container).toBe('parquet');
    expect(report.totalEntries).toBe(3);
    expect(report.rows).toEqual([
      { kind: 'text', text: 'Zog the dragon' },
      { kind: 'text', text: 'Lily' },
    ]);
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0]).toMatchObject({ line: 2, entry: 2 });
    expect(report.errors[0].excerpt).toBe('{"text":null,"id":"2"}');
  });

  it('refuses a file that is cut short with a ParquetReadError, not a crash', async () => {
    const file = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: ['a', 'b'], type: 'STRING' }] }));
    const broken = new Uint8Array([...file.slice(0, 8), ...file.slice(-8)]);
    expect(isParquet(broken)).toBe(true);
    await expect(parseDatasetBytes(broken)).rejects.toThrow(ParquetReadError);
  });
});

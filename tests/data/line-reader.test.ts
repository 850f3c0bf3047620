import { describe, expect, it } from 'vitest';
import { detectEncoding, readLines, type TextLine } from '../../src/data/line-reader';

async function lines(bytes: Uint8Array | string, options: { sliceBytes?: number; maxLineBytes?: number } = {}): Promise<TextLine[]> {
  const out: TextLine[] = [];
  for await (const line of readLines(new Blob([bytes as Uint8Array<ArrayBuffer>]), options)) out.push(line);
  return out;
}

const texts = (ls: TextLine[]) => ls.map((l) => l.text);

function utf16(text: string, order: 'le' | 'be', bom: boolean): Uint8Array {
  const units = bom ? `\uFEFF${text}` : text;
  const out = new Uint8Array(units.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < units.length; i++) view.setUint16(i * 2, units.charCodeAt(i), order === 'le');
  return out;
}

const SAMPLE = '{"text": "Zog flew."}\r\n\n{"text": "naïve café 🐉"}\n  \n{"text": "last, no newline"}';

describe('readLines', () => {
  it('gives every line of a UTF-8 file in order, whatever the slice size, as split("\\n") would', async () => {
    const expected = SAMPLE.split('\n');
    for (const sliceBytes of [1, 2, 3, 7, 64, 2 ** 20]) {
      const got = await lines(SAMPLE, { sliceBytes });
      expect(texts(got), `slices of ${sliceBytes}`).toEqual(expected);
      expect(got.map((l) => l.number)).toEqual(expected.map((_, i) => i + 1));
      expect(got.every((l) => !l.invalidUtf8 && l.tooLongBytes === null)).toBe(true);
    }
  });

  it('does not count a final newline as a line, skips a byte-order mark and reads an empty file as no lines', async () => {
    expect(texts(await lines('a\nb\n'))).toEqual(['a', 'b']);
    expect(texts(await lines('\n'))).toEqual(['']);
    expect(await lines('')).toEqual([]);
    expect(texts(await lines(new Uint8Array([0xef, 0xbb, 0xbf, 0x61, 0x0a, 0x62]), { sliceBytes: 2 }))).toEqual(['a', 'b']);
  });

  it('flags exactly the lines that are not UTF-8, also when one spans slices, and decodes their neighbours', async () => {
    const bytes = new Uint8Array([...new TextEncoder().encode('ok 1\nbad '), 0xff, 0xc3, ...new TextEncoder().encode(' end\nok 2 é\n')]);
    for (const sliceBytes of [1, 3, 1024]) {
      const got = await lines(bytes, { sliceBytes });
      expect(got.map((l) => [l.text, l.invalidUtf8])).toEqual([
        ['ok 1', false],
        ['bad \uFFFD\uFFFD end', true],
        ['ok 2 é', false],
      ]);
    }
  });

  it('reads UTF-16 in both byte orders, with and without a byte-order mark, a surrogate pair split between slices', async () => {
    for (const order of ['le', 'be'] as const) {
      for (const bom of [true, false]) {
        for (const sliceBytes of [1, 3, 5, 4096]) {
          expect(texts(await lines(utf16(SAMPLE, order, bom), { sliceBytes })), `${order} bom=${bom} slices ${sliceBytes}`).toEqual(
            SAMPLE.split('\n'),
          );
        }
      }
    }
    expect(detectEncoding(utf16('{}', 'le', false))).toEqual({ encoding: 'utf-16le', bomBytes: 0 });
    expect(detectEncoding(utf16('{}', 'be', true))).toEqual({ encoding: 'utf-16be', bomBytes: 2 });
    expect(detectEncoding(new TextEncoder().encode('{"a"'))).toEqual({ encoding: 'utf-8', bomBytes: 0 });
  });

  it('reports a line longer than the limit by its length and first bytes, without keeping it, and reads on', async () => {
    const long = `{"text": "${'x'.repeat(5000)}"}`;
    for (const sliceBytes of [100, 4096, 2 ** 20]) {
      const got = await lines(`first\n${long}\nafter`, { sliceBytes, maxLineBytes: 1000 });
      expect(got.map((l) => [l.number, l.tooLongBytes])).toEqual([
        [1, null],
        [2, long.length],
        [3, null],
      ]);
      expect(got[1].text).toBe(long.slice(0, 256));
      expect(got[2].text).toBe('after');
    }
    const wide = await lines(utf16(`${long}\nafter`, 'le', true), { sliceBytes: 333, maxLineBytes: 1000 });
    expect(wide.map((l) => [l.tooLongBytes, l.text.length])).toEqual([
      [long.length * 2, 256],
      [null, 5],
    ]);
  });
});

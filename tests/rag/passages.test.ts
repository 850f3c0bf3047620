import { describe, expect, it } from 'vitest';
import { markdownBlocks, textBlocks } from '../../src/rag/blocks';
import {
  decodeDocument,
  DocumentError,
  documentFormat,
  PASSAGE_MAX_CHARS,
  PASSAGE_OVERLAP_CHARS,
  splitDocument,
} from '../../src/rag/passages';

const sentences = (n: number, topic: string) => Array.from({ length: n }, (_, i) => `Sentence ${i + 1} is about ${topic} in some detail.`);

describe('documents to blocks', () => {
  it('reads plain text as paragraphs separated by blank lines', () => {
    expect(textBlocks('one\ntwo\n\n\n  \nthree\n')).toEqual([
      { text: 'one\ntwo', headings: [], code: false },
      { text: 'three', headings: [], code: false },
    ]);
  });

  it('reads Markdown headings as sections, keeps fenced code whole and skips front matter', () => {
    const md = [
      '---',
      'title: x',
      '---',
      'Intro.',
      '# Setup',
      'Install it.',
      '```sh',
      'npm i',
      '',
      '# not a heading',
      '```',
      '### Deep',
      'Deeper.',
      '## Use #',
      'Run it.',
    ].join('\n');
    expect(markdownBlocks(md)).toEqual([
      { text: 'Intro.', headings: [], code: false },
      { text: 'Install it.', headings: ['Setup'], code: false },
      { text: '```sh\nnpm i\n\n# not a heading\n```', headings: ['Setup'], code: true },
      { text: 'Deeper.', headings: ['Setup', '', 'Deep'], code: false },
      { text: 'Run it.', headings: ['Setup', 'Use'], code: false },
    ]);
  });
});

describe('splitDocument', () => {
  it('keeps a short document as one passage with its name, position and heading', () => {
    expect(splitDocument('faq.md', '# Refunds\n\nRefunds are issued within 5 days.\n')).toEqual([
      { id: 'faq.md#0', document: 'faq.md', index: 0, heading: 'Refunds', text: 'Refunds are issued within 5 days.' },
    ]);
  });

  it('bounds every passage, covers every sentence, and overlaps consecutive passages of a section', () => {
    const all = sentences(40, 'billing');
    const text = `${all.slice(0, 20).join(' ')}\n\n${all.slice(20).join(' ')}`;
    const passages = splitDocument('billing.txt', text);
    expect(passages.length).toBeGreaterThan(3);
    expect(passages.map((p) => p.index)).toEqual(passages.map((_, i) => i));
    for (const p of passages) expect(p.text.length).toBeLessThanOrEqual(PASSAGE_MAX_CHARS);
    for (const s of all) expect(passages.some((p) => p.text.includes(s))).toBe(true);
    for (let i = 1; i < passages.length; i++) {
      const lastOfPrevious = passages[i - 1].text.split(/(?<=\.)\s+/).at(-1)!;
      // Each sentence here is ~45 characters, so the overlap repeats the previous passage's last sentences.
      expect(passages[i].text).toContain(lastOfPrevious);
      const repeated = passages[i].text.indexOf(lastOfPrevious) + lastOfPrevious.length;
      expect(repeated).toBeLessThanOrEqual(PASSAGE_OVERLAP_CHARS);
    }
  });

  it('never lets passages cross a heading, and does not overlap across one', () => {
    const md = `# A\n\n${sentences(20, 'alpha').join(' ')}\n\n# B\n\n${sentences(3, 'beta').join(' ')}`;
    const passages = splitDocument('doc.md', md);
    const b = passages.filter((p) => p.heading === 'B');
    expect(b).toHaveLength(1);
    expect(b[0].text).toBe(sentences(3, 'beta').join(' '));
    expect(passages.filter((p) => p.heading === 'A').every((p) => !p.text.includes('beta'))).toBe(true);
  });

  it('cuts a sentence longer than a passage at spaces, and a word longer than a passage anywhere', () => {
    const long = Array.from({ length: 50 }, (_, i) => `word${i}`).join(' ');
    const passages = splitDocument('long.txt', `${long}\n\n${'x'.repeat(250)}`, { maxChars: 100, overlapChars: 20 });
    for (const p of passages) expect(p.text.length).toBeLessThanOrEqual(100);
    expect(
      passages
        .map((p) => p.text)
        .join(' ')
        .replace(/\s+/g, ' '),
    ).toContain('word0 word1');
    expect(passages.filter((p) => /^x+$/.test(p.text)).map((p) => p.text.length)).toEqual([100, 100, 50]);
    const words = new Set(passages.flatMap((p) => p.text.split(/\s+/)));
    for (let i = 0; i < 50; i++) expect(words.has(`word${i}`)).toBe(true);
  });

  it('keeps the line breaks of code', () => {
    const [passage] = splitDocument('x.md', '```py\nx = 1\n\ny = 2\n```');
    expect(passage.text).toBe('```py\nx = 1\n\ny = 2\n```');
  });

  it('refuses unknown types, binary files, empty documents and bad sizes with what to do', () => {
    expect(documentFormat('a.HTM')).toBe('html');
    expect(documentFormat('notes.markdown')).toBe('markdown');
    expect(() => documentFormat('report.pdf')).toThrow(/add \.txt, \.md or \.html documents \(got \.pdf\)\. PDF is not read here/);
    expect(() => documentFormat('README')).toThrow(/got no extension/);
    expect(() => splitDocument('empty.md', '\n\n# Title only\n')).toThrow(DocumentError);
    expect(() => splitDocument('empty.md', '\n\n# Title only\n')).toThrow('"empty.md" has no text to search.');
    expect(() => decodeDocument('x.txt', new Uint8Array([0x66, 0xff, 0x66]))).toThrow(/is not UTF-8 text/);
    expect(() => decodeDocument('x.txt', new Uint8Array([0x66, 0x00]))).toThrow(/NUL bytes/);
    expect(decodeDocument('x.txt', new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0xc3, 0xa9]))).toBe('hé');
    expect(() => splitDocument('a.txt', 'x', { maxChars: 10, overlapChars: 10 })).toThrow(RangeError);
  });

  it('reads CRLF files like LF files', () => {
    expect(splitDocument('a.md', '# T\r\n\r\nLine one.\r\nLine two.\r\n')).toEqual(splitDocument('a.md', '# T\n\nLine one.\nLine two.\n'));
  });
});

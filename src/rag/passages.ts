/**
 * Documents (.txt, .md, .html) split into passages of bounded size for retrieval. The rules, and
 * why the sizes are what they are, are in src/rag/README.md.
 *
 * A document becomes blocks (paragraphs, code blocks) under their section headings (blocks.ts,
 * html.ts); each block becomes units (sentences; lines for code; a unit longer than a passage is cut
 * at a space, or anywhere if it has none); consecutive units of one section are packed into
 * passages of at most PASSAGE_MAX_CHARS characters. A passage after the first in its section begins
 * with the last whole sentences of the one before, up to PASSAGE_OVERLAP_CHARS, so a fact that
 * straddles a boundary is whole in one of them. Sections never share a passage.
 */
import { type Block, markdownBlocks, textBlocks } from './blocks';
import { htmlBlocks } from './html';

/** At most this many characters (JavaScript string length) per passage, overlap included. */
export const PASSAGE_MAX_CHARS = 700;
/** At most this many characters of the previous passage repeated at the start of the next one. */
export const PASSAGE_OVERLAP_CHARS = 150;

export const DOCUMENT_FORMATS = ['text', 'markdown', 'html'] as const;
export type DocumentFormat = (typeof DOCUMENT_FORMATS)[number];

const EXTENSIONS: Record<string, DocumentFormat> = {
  txt: 'text',
  text: 'text',
  md: 'markdown',
  markdown: 'markdown',
  html: 'html',
  htm: 'html',
};

export interface Passage {
  /** `${document}#${index}`: unique within an index, stable for the same file. */
  id: string;
  /** The file name it came from. */
  document: string;
  /** Position in the document: 0 for its first passage. */
  index: number;
  /** The section headings it sits under, outermost first, joined with " > " ('' before the first heading). */
  heading: string;
  text: string;
}

export interface SplitOptions {
  maxChars?: number;
  overlapChars?: number;
}

/** A file that cannot be split: unknown type, not text, or no text at all. The message says what to do. */
export class DocumentError extends Error {
  override name = 'DocumentError';
}

export function documentFormat(fileName: string): DocumentFormat {
  const extension = /\.([a-z0-9]+)$/i.exec(fileName)?.[1].toLowerCase() ?? '';
  const format = Object.hasOwn(EXTENSIONS, extension) ? EXTENSIONS[extension] : undefined;
  if (format) return format;
  const pdf = extension === 'pdf' ? ' PDF is not read here: save it as text or HTML first.' : '';
  throw new DocumentError(`"${fileName}": add .txt, .md or .html documents (got ${extension ? `.${extension}` : 'no extension'}).${pdf}`);
}

/** UTF-8 (a BOM is dropped); a file with bytes that are not UTF-8 or with NUL bytes is binary, not a document. */
export function decodeDocument(fileName: string, bytes: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DocumentError(`"${fileName}" is not UTF-8 text (a binary file?); save it as UTF-8 text, Markdown or HTML.`);
  }
  if (text.includes('\u0000')) throw new DocumentError(`"${fileName}" holds NUL bytes, so it is binary, not text.`);
  return text.replace(/^\uFEFF/, '');
}

export function documentBlocks(fileName: string, text: string): Block[] {
  const normalised = text.replace(/\r\n?/g, '\n');
  switch (documentFormat(fileName)) {
    case 'text':
      return textBlocks(normalised);
    case 'markdown':
      return markdownBlocks(normalised);
    case 'html':
      return htmlBlocks(normalised);
  }
}

interface Unit {
  text: string;
  /** First unit of its block: joined to the one before with a blank line. */
  startsBlock: boolean;
  /** Lines of a code block are joined with a line break, sentences with a space. */
  code: boolean;
}

// A sentence ends at . ! or ? (and any closing quotes or brackets) before whitespace.
const SENTENCE_END = /(?<=[.!?]["')\]]*)\s+(?=\S)/;

function cut(text: string, max: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > max) {
    const space = rest.lastIndexOf(' ', max);
    const at = space > 0 ? space : max;
    out.push(rest.slice(0, at).trimEnd());
    rest = rest.slice(at).trimStart();
  }
  if (rest !== '') out.push(rest);
  return out;
}

function units(block: Block, max: number): Unit[] {
  // Blank lines inside code are kept: they are part of the code.
  const pieces = block.code
    ? block.text.split('\n').flatMap((line) => (line.trim() === '' ? [''] : cut(line.trimEnd(), max)))
    : block.text.split(SENTENCE_END).flatMap((sentence) => cut(sentence.trim(), max));
  return pieces.map((text, i) => ({ text, startsBlock: i === 0, code: block.code }));
}

function joined(list: Unit[]): string {
  return list.map((u, i) => (i === 0 ? '' : u.startsBlock ? '\n\n' : u.code ? '\n' : ' ') + u.text).join('');
}

function pack(section: Unit[], max: number, overlap: number): string[] {
  const passages: string[] = [];
  let current: Unit[] = [];
  /** Units in `current` that are not repeated from the previous passage. */
  let fresh = 0;
  for (const unit of section) {
    if (fresh > 0 && joined([...current, unit]).length > max) {
      passages.push(joined(current));
      const tail: Unit[] = [];
      for (let i = current.length - 1; i >= 0 && joined([current[i], ...tail]).length <= overlap; i--) tail.unshift(current[i]);
      current = joined([...tail, unit]).length <= max ? tail : [];
      fresh = 0;
    }
    current.push(unit);
    fresh++;
  }
  if (fresh > 0) passages.push(joined(current));
  return passages;
}

/** The document's passages in order; throws DocumentError for an unknown type or a document without text. */
export function splitDocument(fileName: string, text: string, options: SplitOptions = {}): Passage[] {
  const max = options.maxChars ?? PASSAGE_MAX_CHARS;
  const overlap = options.overlapChars ?? PASSAGE_OVERLAP_CHARS;
  if (!(Number.isInteger(max) && max > 0 && Number.isInteger(overlap) && overlap >= 0 && overlap < max)) {
    throw new RangeError(`passage sizes: need whole numbers with 0 <= overlapChars < maxChars, got ${overlap} and ${max}`);
  }
  const blocks = documentBlocks(fileName, text);
  const sections: { heading: string; units: Unit[] }[] = [];
  for (const b of blocks) {
    const heading = b.headings.filter((h) => h !== '').join(' > ');
    if (sections.length === 0 || sections[sections.length - 1].heading !== heading) sections.push({ heading, units: [] });
    sections[sections.length - 1].units.push(...units(b, max));
  }
  const passages = sections.flatMap((s) => pack(s.units, max, overlap).map((passage) => ({ heading: s.heading, text: passage })));
  if (passages.length === 0) throw new DocumentError(`"${fileName}" has no text to search.`);
  return passages.map((p, index) => ({ id: `${fileName}#${index}`, document: fileName, index, heading: p.heading, text: p.text }));
}

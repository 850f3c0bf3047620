/**
 * The lines of a text file of any size, read from a Blob in slices, never whole: memory stays at
 * one slice plus the longest line allowed, whatever the file holds. A line longer than
 * MAX_LINE_BYTES is not kept: it is reported by its number and length, with its first bytes.
 *
 * Encodings: UTF-8 (a byte-order mark is skipped), and UTF-16 in either byte order, recognised by
 * its byte-order mark or, without one, by the zero bytes of its first character (what Windows
 * PowerShell and some editors write). UTF-8 is split on newline bytes first (a newline byte never
 * occurs inside a multi-byte character), so each line is decoded on its own and a line with bytes
 * that are not UTF-8 is flagged instead of spoiling its neighbours. UTF-16 is decoded in stream
 * mode, so a character split between two slices is joined.
 */

/** Longest line read as a row: far above any real training row, low enough that a file without newlines cannot exhaust memory. */
export const MAX_LINE_BYTES = 8 * 2 ** 20;

/** Bytes read from the Blob at a time. */
export const SLICE_BYTES = 2 ** 20;

/** Characters of a refused line kept for its excerpt. */
const HEAD_BYTES = 256;

export type TextEncoding = 'utf-8' | 'utf-16le' | 'utf-16be';

export interface TextLine {
  /** 1-based. */
  number: number;
  /** Without its line break (a CR before the LF stays, as parseJsonl expects); for a line too long, its first characters. */
  text: string;
  /** UTF-8 files: the line's bytes are not valid UTF-8 (decoded with U+FFFD in their place). */
  invalidUtf8: boolean;
  /** Set when the line is longer than MAX_LINE_BYTES: its length in bytes. `text` then holds only its start. */
  tooLongBytes: number | null;
}

export interface LineReaderOptions {
  sliceBytes?: number;
  maxLineBytes?: number;
  /** Called after each slice with the bytes read so far. */
  onBytes?: (bytesRead: number) => void;
}

/** The encoding of a file from its first bytes, and how many of them are a byte-order mark. */
export function detectEncoding(head: Uint8Array): { encoding: TextEncoding; bomBytes: number } {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { encoding: 'utf-8', bomBytes: 3 };
  if (head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf-16le', bomBytes: 2 };
  if (head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf-16be', bomBytes: 2 };
  // No mark: an ASCII character followed (or preceded) by a zero byte is UTF-16; UTF-8 text has no zero bytes.
  if (head.length >= 2 && head[0] !== 0 && head[0] < 0x80 && head[1] === 0) return { encoding: 'utf-16le', bomBytes: 0 };
  if (head.length >= 2 && head[0] === 0 && head[1] !== 0 && head[1] < 0x80) return { encoding: 'utf-16be', bomBytes: 0 };
  return { encoding: 'utf-8', bomBytes: 0 };
}

/** Every line of `blob`, in order; a final line break does not start a line. */
export async function* readLines(blob: Blob, options: LineReaderOptions = {}): AsyncGenerator<TextLine> {
  const sliceBytes = options.sliceBytes ?? SLICE_BYTES;
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const { encoding, bomBytes } = detectEncoding(new Uint8Array(await blob.slice(0, 4).arrayBuffer()));
  const lines = encoding === 'utf-8' ? new Utf8Lines(maxLineBytes) : new Utf16Lines(encoding, maxLineBytes);
  for (let offset = bomBytes; offset < blob.size; offset += sliceBytes) {
    const slice = new Uint8Array(await blob.slice(offset, Math.min(blob.size, offset + sliceBytes)).arrayBuffer());
    yield* lines.push(slice);
    options.onBytes?.(Math.min(blob.size, offset + sliceBytes));
  }
  yield* lines.end();
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const lenientUtf8 = new TextDecoder('utf-8');

class Utf8Lines {
  #number = 0;
  /** The bytes of the line so far, when it is not yet too long. */
  #parts: Uint8Array[] = [];
  #length = 0;
  /** Its first bytes, once it is too long. */
  #head: Uint8Array | null = null;

  constructor(private readonly maxLineBytes: number) {}

  *push(bytes: Uint8Array): Generator<TextLine> {
    let start = 0;
    for (let nl = bytes.indexOf(0x0a); nl >= 0; nl = bytes.indexOf(0x0a, start)) {
      this.#add(bytes.subarray(start, nl));
      yield this.#take();
      start = nl + 1;
    }
    // Copied: the rest of the slice waits for the next one, which would otherwise keep the whole slice alive.
    if (start < bytes.length) this.#add(bytes.slice(start));
  }

  *end(): Generator<TextLine> {
    if (this.#length > 0 || this.#head) yield this.#take();
  }

  #add(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#length += bytes.length;
    if (this.#head) return;
    if (this.#length > this.maxLineBytes) {
      this.#head = concat([...this.#parts, bytes.subarray(0, HEAD_BYTES)]).slice(0, HEAD_BYTES);
      this.#parts = [];
      return;
    }
    this.#parts.push(bytes);
  }

  #take(): TextLine {
    this.#number++;
    const number = this.#number;
    const length = this.#length;
    const head = this.#head;
    const bytes = head ?? concat(this.#parts);
    this.#parts = [];
    this.#length = 0;
    this.#head = null;
    if (head) return { number, text: lenientUtf8.decode(bytes), invalidUtf8: false, tooLongBytes: length };
    try {
      return { number, text: strictUtf8.decode(bytes), invalidUtf8: false, tooLongBytes: null };
    } catch {
      return { number, text: lenientUtf8.decode(bytes), invalidUtf8: true, tooLongBytes: null };
    }
  }
}

class Utf16Lines {
  #number = 0;
  readonly #decoder: TextDecoder;
  #parts: string[] = [];
  #chars = 0;
  #head: string | null = null;

  constructor(
    encoding: 'utf-16le' | 'utf-16be',
    private readonly maxLineBytes: number,
  ) {
    this.#decoder = new TextDecoder(encoding);
  }

  *push(bytes: Uint8Array): Generator<TextLine> {
    yield* this.#text(this.#decoder.decode(bytes, { stream: true }));
  }

  *end(): Generator<TextLine> {
    yield* this.#text(this.#decoder.decode());
    if (this.#chars > 0 || this.#head !== null) yield this.#take();
  }

  *#text(text: string): Generator<TextLine> {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      this.#add(text.slice(start, nl));
      yield this.#take();
      start = nl + 1;
    }
    if (start < text.length) this.#add(text.slice(start));
  }

  #add(text: string): void {
    if (text.length === 0) return;
    this.#chars += text.length;
    if (this.#head !== null) return;
    if (this.#chars * 2 > this.maxLineBytes) {
      this.#head = [...this.#parts, text].join('').slice(0, HEAD_BYTES);
      this.#parts = [];
      return;
    }
    this.#parts.push(text);
  }

  #take(): TextLine {
    this.#number++;
    const line: TextLine = {
      number: this.#number,
      text: this.#head ?? this.#parts.join(''),
      invalidUtf8: false,
      tooLongBytes: this.#head === null ? null : this.#chars * 2,
    };
    this.#parts = [];
    this.#chars = 0;
    this.#head = null;
    return line;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * A document as a list of blocks (paragraphs, list runs, code blocks) under their section headings:
 * what passage splitting (passages.ts) packs. Plain text and Markdown are read here, HTML in html.ts.
 */

export interface Block {
  text: string;
  /** The headings this block sits under, outermost first ([] before the first heading). */
  headings: string[];
  /** Code keeps its line breaks and is cut at lines, not sentences. */
  code: boolean;
}

/** Sets the heading of `level` (1 = outermost) and drops the deeper ones, as a new section does. */
export function enterSection(headings: string[], level: number, title: string): string[] {
  const kept = headings.slice(0, level - 1);
  while (kept.length < level - 1) kept.push('');
  return [...kept, title];
}

/** Paragraphs are runs of non-blank lines. */
export function textBlocks(text: string): Block[] {
  return paragraphs(text.split('\n')).map((lines) => ({ text: lines.join('\n'), headings: [], code: false }));
}

function paragraphs(lines: string[]): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  for (const line of lines) {
    if (line.trim() === '') {
      if (current.length > 0) out.push(current);
      current = [];
    } else {
      current.push(line.trimEnd());
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}

const ATX_HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;

/**
 * Markdown: ATX headings (`#` to `######`) open sections, fenced code blocks stay whole (blank
 * lines inside them do not split them), everything else is paragraphs separated by blank lines. A
 * YAML front matter block (`---` on the first line up to the next `---`) is metadata, not text.
 * Setext headings (a line underlined with `===`) are read as paragraphs.
 */
export function markdownBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n').map((line) => line.replace(/\r$/, ''));
  let start = 0;
  if (lines[0]?.trim() === '---') {
    const end = lines.findIndex((line, i) => i > 0 && line.trim() === '---');
    if (end > 0) start = end + 1;
  }
  const blocks: Block[] = [];
  let headings: string[] = [];
  let prose: string[] = [];
  const flushProse = () => {
    for (const para of paragraphs(prose)) blocks.push({ text: para.join('\n'), headings, code: false });
    prose = [];
  };
  for (let i = start; i < lines.length; i++) {
    const line = lines[i];
    const fence = FENCE_OPEN.exec(line);
    if (fence) {
      flushProse();
      const closing = new RegExp(`^ {0,3}${fence[1][0]}{${fence[1].length},}[ \\t]*$`);
      const body = [line];
      while (++i < lines.length) {
        body.push(lines[i]);
        if (closing.test(lines[i])) break;
      }
      blocks.push({ text: body.join('\n').trimEnd(), headings, code: true });
      continue;
    }
    const heading = ATX_HEADING.exec(line);
    if (heading) {
      flushProse();
      if (heading[2] !== '') headings = enterSection(headings, heading[1].length, heading[2]);
      continue;
    }
    prose.push(line);
  }
  flushProse();
  return blocks;
}

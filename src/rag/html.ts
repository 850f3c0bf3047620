/**
 * HTML documents reduced to text blocks with htmlparser2's streaming tokenizer. Nothing in the
 * file is run, loaded or rendered: the tokenizer only reports tags and text, which become plain
 * strings here (the page shows them with textContent). DOMParser would be as safe in a window, but
 * the engine runs in a Web Worker and in Node, where it does not exist, and one parser everywhere
 * means the tests check what the page runs.
 *
 * - Text inside script, style, template, noscript, svg, math, iframe, object, canvas and head is
 *   dropped: it is code or metadata, not what a reader sees.
 * - h1 to h6 open sections (the block's headings, as in Markdown).
 * - Block elements (p, div, li, tr, blockquote, section, ...) end the current block; br, li and tr
 *   start a new line inside it; cells are separated by " | ".
 * - Whitespace runs collapse to one space, except inside pre, which becomes a code block.
 * - Entities are decoded (`&amp;` is `&`); comments are dropped.
 */
import { Parser } from 'htmlparser2';
import { type Block, enterSection } from './blocks';

const SKIPPED = new Set(['script', 'style', 'template', 'noscript', 'svg', 'math', 'iframe', 'object', 'canvas', 'head']);
const BLOCKS = new Set([
  'p',
  'div',
  'section',
  'article',
  'main',
  'header',
  'footer',
  'aside',
  'nav',
  'blockquote',
  'ul',
  'ol',
  'dl',
  'dt',
  'dd',
  'table',
  'thead',
  'tbody',
  'tfoot',
  'caption',
  'figure',
  'figcaption',
  'form',
  'fieldset',
  'address',
  'details',
  'summary',
  'hr',
  'body',
  'html',
]);
const LINE_BREAKS = new Set(['br', 'li', 'tr']);
const CELLS = new Set(['td', 'th']);
const HEADING = /^h([1-6])$/;

export function htmlBlocks(html: string): Block[] {
  const blocks: Block[] = [];
  let headings: string[] = [];
  let skipDepth = 0;
  let preDepth = 0;
  let lines: string[] = [''];
  let heading: { level: number; text: string } | null = null;
  let cellOpen = false;

  const flush = () => {
    const text = lines
      .map((line) => (preDepth > 0 ? line.trimEnd() : line.trim()))
      .join('\n')
      .replace(/^\n+|\n+$/g, '');
    if (text.trim() !== '') blocks.push({ text, headings, code: preDepth > 0 });
    lines = [''];
  };
  const newLine = () => {
    if (lines[lines.length - 1].trim() !== '') lines.push('');
  };
  const append = (text: string) => {
    if (heading) {
      heading.text += text;
      return;
    }
    const last = lines.length - 1;
    lines[last] += preDepth > 0 ? text : text.replace(/\s+/g, ' ');
  };

  const parser = new Parser(
    {
      onopentag(name) {
        if (skipDepth > 0 || SKIPPED.has(name)) {
          skipDepth++;
          return;
        }
        const level = HEADING.exec(name);
        if (level) {
          flush();
          heading = { level: Number(level[1]), text: '' };
        } else if (name === 'pre') {
          flush();
          preDepth++;
        } else if (BLOCKS.has(name)) {
          flush();
        } else if (LINE_BREAKS.has(name)) {
          if (name === 'br' && preDepth > 0) lines.push('');
          else newLine();
          cellOpen = false;
        } else if (CELLS.has(name)) {
          if (cellOpen) append(' | ');
          cellOpen = true;
        }
      },
      onclosetag(name) {
        if (skipDepth > 0) {
          skipDepth--;
          return;
        }
        const level = HEADING.exec(name);
        if (level && heading) {
          const title = heading.text.replace(/\s+/g, ' ').trim();
          if (title !== '') headings = enterSection(headings, heading.level, title);
          heading = null;
        } else if (name === 'pre') {
          flush();
          preDepth = Math.max(0, preDepth - 1);
        } else if (BLOCKS.has(name)) {
          flush();
        } else if (name === 'tr') {
          cellOpen = false;
        }
      },
      ontext(text) {
        if (skipDepth === 0) append(text);
      },
    },
    { decodeEntities: true },
  );
  parser.write(html);
  parser.end();
  flush();
  return blocks;
}

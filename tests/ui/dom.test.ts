import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sources(full) : /\.ts$/.test(entry.name) ? [full] : [];
  });
}

/** APIs that turn a string into markup or script; the page builds every node with el() and textContent instead. */
const SINKS = new RegExp(
  [
    String.raw`\.innerHTML\b`,
    String.raw`\.outerHTML\b`,
    'insertAdjacentHTML',
    String.raw`document\.write`,
    'createContextualFragment',
    String.raw`\bsrcdoc\b`,
    'new DOMParser',
    String.raw`\beval\(`,
    String.raw`new Function\(`,
  ].join('|'),
);

describe('the page', () => {
  it('has no way to turn text into markup or code: no HTML sink anywhere in src/', () => {
    const hits = sources(SRC).flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, i) =>
          SINKS.test(line) && !line.trim().startsWith('*') && !line.trim().startsWith('//')
            ? [`${path.relative(SRC, file)}:${i + 1}: ${line.trim()}`]
            : [],
        ),
    );
    expect(hits).toEqual([]);
  });
});

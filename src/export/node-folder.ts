/** Writes exported files to disk for the CLI; the only export module that touches node:fs. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes each file under `dir`, creating folders as needed. Paths are relative with `/`
 * separators; one that would land outside `dir` is refused rather than written.
 */
export async function writeFolder(
  dir: string,
  files: Record<string, Uint8Array> | AsyncIterable<{ path: string; bytes: Uint8Array }>,
): Promise<string[]> {
  const root = path.resolve(dir);
  const entries: AsyncIterable<{ path: string; bytes: Uint8Array }> | { path: string; bytes: Uint8Array }[] =
    Symbol.asyncIterator in files
      ? (files as AsyncIterable<{ path: string; bytes: Uint8Array }>)
      : Object.entries(files).map(([p, bytes]) => ({ path: p, bytes }));
  await mkdir(root, { recursive: true });
  const written: string[] = [];
  for await (const { path: relative, bytes } of entries) {
    const full = path.resolve(root, relative);
    if (!full.startsWith(root + path.sep)) throw new Error(`Refusing to write "${relative}": it lies outside ${root}.`);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, bytes);
    written.push(full);
  }
  return written;
}

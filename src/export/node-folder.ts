/** Writes exported files to disk for the CLI; the only export module that touches node:fs. */
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExportFile } from './service';

/**
 * Writes each file under `dir`, creating folders as needed; a file given as parts is written part
 * by part, so a merged model never sits in memory whole. Paths are relative with `/` separators;
 * one that would land outside `dir` is refused rather than written.
 */
export async function writeFolder(dir: string, files: Record<string, Uint8Array> | AsyncIterable<ExportFile>): Promise<string[]> {
  const root = path.resolve(dir);
  const entries: AsyncIterable<ExportFile> | ExportFile[] =
    Symbol.asyncIterator in files ? (files as AsyncIterable<ExportFile>) : Object.entries(files).map(([p, bytes]) => ({ path: p, bytes }));
  await mkdir(root, { recursive: true });
  const written: string[] = [];
  for await (const file of entries) {
    const full = path.resolve(root, file.path);
    if (!full.startsWith(root + path.sep)) throw new Error(`Refusing to write "${file.path}": it lies outside ${root}.`);
    await mkdir(path.dirname(full), { recursive: true });
    if ('bytes' in file) {
      await writeFile(full, file.bytes);
    } else {
      const handle = await open(full, 'w');
      try {
        for await (const part of file.parts) await handle.write(part);
      } finally {
        await handle.close();
      }
    }
    written.push(full);
  }
  return written;
}

import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDataset } from '../../src/cli/common';
import { REPO_ROOT } from '../helpers/paths';

const IMPORTS = resolve(REPO_ROOT, 'tests/data/imports');

describe('the CLI reads datasets as the page does', () => {
  it("reads Open WebUI's JSON export, reporting each broken chat with its entry", async () => {
    const log: string[] = [];
    const path = resolve(IMPORTS, 'open_webui_export.json');
    const rows = await readDataset(path, (line) => log.push(line));
    expect(rows).toHaveLength(3);
    const errors = log.filter((line) => /^.+:\d+: /.test(line));
    expect(errors).toHaveLength(4);
    for (const line of errors) expect(line).toMatch(/^.+:\d+: entry \d+: \S/);
    expect(log.at(-1)).toBe(`${path}: using 3 valid rows, skipping 4 invalid lines`);
  });

  it('reads OpenAI-style logs line by line', async () => {
    const log: string[] = [];
    const path = resolve(IMPORTS, 'openai_log.jsonl');
    const rows = await readDataset(path, (line) => log.push(line));
    expect(rows).toHaveLength(4);
    expect(log.filter((line) => /^.+:\d+: /.test(line)).map((line) => Number(line.split(':')[1]))).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
  });
});

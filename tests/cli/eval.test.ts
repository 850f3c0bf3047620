import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFolder } from '../../src/export/node-folder';
import { peftAdapterFiles } from '../../src/export/peft';
import { validateLoraConfig } from '../../src/lora/config';
import { loadGoldenCase } from '../../src/model/golden';
import { nodeFileSource } from '../../src/model/node-file-source';
import { webtune } from '../helpers/cli';
import { GOLDEN_DIR, SHARED, STORIES_260K } from '../helpers/paths';

const dir = mkdtempSync(join(tmpdir(), 'webtune-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (name: string) =>
  readFileSync(resolve(SHARED, 'data', name), 'utf8')
    .trim()
    .split('\n');
/** A JSONL file of the given lines in the temporary folder. */
function file(name: string, rows: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${rows.join('\n')}\n`);
  return path;
}

const rag = JSON.stringify({
  messages: [
    { role: 'system', content: 'Context:\n[1] Zog is green.' },
    { role: 'user', content: 'Who is Zog?' },
    { role: 'assistant', content: 'Zog is green [1].' },
  ],
});

describe('webtune eval', () => {
  it('prints the before/after report as the last line and writes the CSV with --format csv --out', async () => {
    const golden = await loadGoldenCase(nodeFileSource(resolve(GOLDEN_DIR, 'stories260K-qkv-r4')));
    const config = validateLoraConfig({ r: golden.lora.r, alpha: golden.lora.alpha, targets: golden.lora.targetModules });
    await writeFolder(join(dir, 'golden-adapter'), peftAdapterFiles({ config, tensors: golden.adapterInit }, { baseModel: 'stories260K' }));
    const data = file('eval.jsonl', [...lines('zog_stories_eval.jsonl').slice(0, 2), rag]);
    const csvPath = join(dir, 'report.csv');
    const run = webtune([
      'eval',
      '--model',
      STORIES_260K,
      '--adapter',
      join(dir, 'golden-adapter'),
      '--data',
      data,
      '--max-new-tokens',
      '4',
      '--max-length',
      '48',
      '--format',
      'csv',
      '--out',
      csvPath,
    ]);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.last);
    expect(report.settings).toMatchObject({ rows: 3, ragRows: 1, maxNewTokens: 4, maxLength: 48, adapter: 'golden-adapter' });
    expect(report.before.label).toBe('base');
    expect(report.after.loss).not.toBeCloseTo(report.before.loss, 4);
    expect(report.delta.loss).toBeCloseTo(report.after.loss - report.before.loss, 10);
    expect(report.before.perplexity).toBeCloseTo(Math.exp(report.before.loss), 6);
    expect(report.examples).toHaveLength(6);
    expect(report.examples[2].rag.reference).toBe('Zog is green [1].');
    expect(report.after.rag.examples).toBe(1);
    const csv = readFileSync(csvPath, 'utf8').split('\r\n');
    expect(csv[0].startsWith('record,model,label,index,kind,targets,loss,perplexity')).toBe(true);
    // Header, 6 example records, 2 summaries, the delta, and the empty string after the last CRLF.
    expect(csv).toHaveLength(11);
    expect(csv.slice(1, 10).map((line) => line.split(',')[0])).toEqual([...Array(6).fill('example'), 'summary', 'summary', 'delta']);
  });

  it('refuses an unknown --format', () => {
    const run = webtune(['eval', '--model', STORIES_260K, '--data', 'x.jsonl', '--format', 'xml']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--format must be json or csv/);
  });
});

describe('webtune train, progressive and --init-adapter', () => {
  it('reports forgetting that the eval command reproduces, and continues only an adapter of the same rank', () => {
    const train = lines('zog_stories_train.jsonl');
    const evalRows = lines('zog_stories_eval.jsonl');
    const phase1Eval = file('a_eval.jsonl', evalRows.slice(0, 1));
    const common = [
      '--model',
      STORIES_260K,
      '--r',
      '4',
      '--alpha',
      '8',
      '--targets',
      'q_proj,v_proj',
      '--lr',
      '1e-2',
      '--batch',
      '2',
      '--max-length',
      '32',
      '--quiet',
    ];
    const run = webtune([
      'train',
      ...common,
      '--epochs',
      '1',
      '--phase1-data',
      file('a.jsonl', train.slice(0, 2)),
      '--phase1-eval',
      phase1Eval,
      '--phase1-epochs',
      '2',
      '--data',
      file('b.jsonl', train.slice(10, 12)),
      '--eval',
      file('b_eval.jsonl', evalRows.slice(3, 4)),
      '--out',
      join(dir, 'phase2'),
      '--phase1-out',
      join(dir, 'phase1'),
    ]);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.last);
    expect(result.mode).toBe('progressive');
    expect(result.phase1.steps).toBe(2);
    expect(result.phase2.steps).toBe(1);
    const f = result.forgetting;
    expect(f.forgetting).toBeCloseTo(f.phase1_eval_loss_after_phase2 - f.phase1_eval_loss_after_phase1, 10);
    expect(readdirSync(join(dir, 'phase1')).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);

    const evalWith = (adapter: string) =>
      JSON.parse(
        webtune(['eval', '--model', STORIES_260K, '--adapter', join(dir, adapter), '--data', phase1Eval, '--max-length', '32']).last,
      );
    expect(evalWith('phase1').after.loss).toBeCloseTo(f.phase1_eval_loss_after_phase1, 5);
    expect(evalWith('phase2').after.loss).toBeCloseTo(f.phase1_eval_loss_after_phase2, 5);

    // Continuing the phase-1 adapter: rank, alpha and targets come from it; training starts from its eval loss.
    const continued = webtune([
      'train',
      '--model',
      STORIES_260K,
      '--init-adapter',
      join(dir, 'phase1'),
      '--data',
      file('c.jsonl', train.slice(4, 6)),
      '--eval',
      phase1Eval,
      '--epochs',
      '1',
      '--batch',
      '2',
      '--max-length',
      '32',
      '--quiet',
      '--out',
      join(dir, 'continued'),
    ]);
    expect(continued.status, continued.stderr).toBe(0);
    expect(JSON.parse(continued.last).eval_loss_before).toBeCloseTo(f.phase1_eval_loss_after_phase1, 5);

    const mismatch = webtune([
      'train',
      ...common,
      '--r',
      '8',
      '--init-adapter',
      join(dir, 'phase1'),
      '--data',
      phase1Eval,
      '--out',
      join(dir, 'x'),
    ]);
    expect(mismatch.status).toBe(2);
    expect(mismatch.stderr).toMatch(/InitAdapterError: .*rank 4 .*r=8/);
  });
});

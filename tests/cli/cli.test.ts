import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { webtune } from '../helpers/cli';
import { describe, expect, it } from 'vitest';
import { peftAdapterFiles } from '../../src/export/peft';
import { writeFolder } from '../../src/export/node-folder';
import { validateLoraConfig } from '../../src/lora/config';
import { loadGoldenCase } from '../../src/model/golden';
import { nodeFileSource } from '../../src/model/node-file-source';
import { GOLDEN_DIR, SHARED, STORIES_260K } from '../helpers/paths';

describe('webtune CLI', () => {
  it('golden prints the result JSON as its last line and exits 0 when ok', () => {
    const run = webtune(['golden', resolve(GOLDEN_DIR, 'stories260K-qkv-r4')]);
    expect(run.stderr).not.toMatch(/webtune:/);
    const result = JSON.parse(run.last);
    expect(Object.keys(result)).toEqual(
      expect.arrayContaining(['loss', 'ref_loss', 'loss_rel_err', 'grad_max_rel_err', 'adamw_max_abs_err', 'ok']),
    );
    expect(result.ok).toBe(true);
    expect(run.status).toBe(0);
  });

  it('golden --recompute on checks the gradients of activation recomputation; other values are refused', () => {
    const run = webtune(['golden', resolve(GOLDEN_DIR, 'stories260K-qkv-r4'), '--recompute', 'on']);
    expect(JSON.parse(run.last)).toMatchObject({ recompute: true, ok: true });
    expect(run.status).toBe(0);
    const bad = webtune(['golden', resolve(GOLDEN_DIR, 'stories260K-qkv-r4'), '--recompute', 'maybe']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--recompute must be on or off, got "maybe"/);
  });

  it('golden passes with every kernel family forced onto its GPU schedule, and refuses an unknown --schedules', () => {
    const run = webtune(['golden', resolve(GOLDEN_DIR, 'stories260K-qkv-r4'), '--schedules', 'gpu']);
    expect(JSON.parse(run.last).ok).toBe(true);
    expect(run.status).toBe(0);
    const bad = webtune(['golden', resolve(GOLDEN_DIR, 'stories260K-qkv-r4'), '--schedules', 'fast']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--schedules must be auto, gpu or cpu, got "fast"/);
  });

  it('golden names the missing file of a broken case directory and exits non-zero', () => {
    const dir = mkdtempSync(join(tmpdir(), 'webtune-golden-'));
    try {
      cpSync(resolve(GOLDEN_DIR, 'stories260K-qkv-r4'), dir, { recursive: true });
      rmSync(join(dir, 'grads.safetensors'));
      const run = webtune(['golden', dir]);
      expect(run.status).not.toBe(0);
      expect(run.stderr).toMatch(/GoldenCaseError/);
      expect(run.stderr).toMatch(/grads\.safetensors/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('generate prints the greedy continuation', () => {
    const run = webtune([
      'generate',
      '--model',
      STORIES_260K,
      '--prompt',
      'Once upon a time',
      '--max-new-tokens',
      '27',
      '--temperature',
      '0',
    ]);
    expect(run.status).toBe(0);
    expect(run.last).toBe(', there was a little girl named Lily. She loved to play outside in the park.');
  });

  it('--weights stores an F32 checkpoint in 16 bits, says so on stderr, and refuses an unknown precision', () => {
    const ids = '1,403,407,261,378';
    const f32 = webtune(['logits', '--model', STORIES_260K, '--ids', ids]);
    expect(f32.stderr).toMatch(/weights on the GPU: f32/);
    const bf16 = webtune(['logits', '--model', STORIES_260K, '--ids', ids, '--weights', 'bf16']);
    expect(bf16.status).toBe(0);
    expect(bf16.stderr).toMatch(/weights on the GPU: bf16/);
    const [a, b] = [JSON.parse(f32.last) as number[], JSON.parse(bf16.last) as number[]];
    // Rounding every weight to 8 significant bits moves the logits a little, not a lot.
    const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(0.1 * Math.max(...a.map(Math.abs)));
    const bad = webtune(['logits', '--model', STORIES_260K, '--ids', ids, '--weights', 'fp8']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--weights must be one of auto, f32, bf16, f16, got "fp8"/);
    expect(webtune(['--help']).stdout).toMatch(/--weights \(every command that loads a model/);
  });

  it('rejects an unknown command with usage', () => {
    const run = webtune(['frobnicate']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('analyze prints the task analysis of a conversation log', () => {
    const run = webtune(['analyze', resolve(SHARED, 'data/chat_rag_sample.jsonl')]);
    expect(run.status).toBe(0);
    const analysis = JSON.parse(run.last);
    expect(analysis.perConversation).toHaveLength(31);
    expect(analysis.perConversation[0].primaryTask).toBe('rag_enhanced');
    expect(analysis.recommendation.strategy).toMatch(/single|multi|progressive/);
  });

  it('export writes a GGUF adapter and logits applies a PEFT adapter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webtune-cli-'));
    try {
      const golden = await loadGoldenCase(nodeFileSource(resolve(GOLDEN_DIR, 'stories260K-qkv-r4')));
      const config = validateLoraConfig({ r: golden.lora.r, alpha: golden.lora.alpha, targets: golden.lora.targetModules });
      await writeFolder(join(dir, 'peft'), peftAdapterFiles({ config, tensors: golden.adapterInit }, { baseModel: 'stories260K' }));
      const gguf = webtune([
        'export',
        '--model',
        STORIES_260K,
        '--adapter',
        join(dir, 'peft'),
        '--format',
        'gguf',
        '--out',
        join(dir, 'zog-gguf'),
      ]);
      expect(gguf.status).toBe(0);
      expect(JSON.parse(gguf.last).files).toEqual([join(dir, 'zog-gguf', 'zog-gguf.gguf'), join(dir, 'zog-gguf', 'Modelfile')]);
      const ids = golden.inputIds[0].join(',');
      const base = JSON.parse(webtune(['logits', '--model', STORIES_260K, '--ids', ids]).last);
      const adapted = JSON.parse(webtune(['logits', '--model', STORIES_260K, '--adapter', join(dir, 'peft'), '--ids', ids]).last);
      expect(adapted).toHaveLength(512);
      for (const [i, ref] of golden.lastPositionLogitsRow0First8!.entries()) expect(Math.abs(adapted[i] - ref)).toBeLessThan(1e-4);
      expect(base[1]).not.toBeCloseTo(adapted[1], 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

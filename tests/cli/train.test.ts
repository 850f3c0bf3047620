import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { webtune } from '../helpers/cli';
import { describe, expect, it } from 'vitest';
import { SHARED, STORIES_260K } from '../helpers/paths';

describe('webtune train (the acceptance run: stories260K learns about Zog)', () => {
  it('reaches eval loss < 0.3 and the adapter makes generate talk about Zog', { timeout: 1_800_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'webtune-train-'));
    try {
      const out = join(dir, 'zog');
      // PyTorch with these settings: eval loss 1.69 -> 0.09 in 48 steps.
      const run = webtune(
        [
          'train',
          '--model',
          STORIES_260K,
          '--data',
          resolve(SHARED, 'data/zog_stories_train.jsonl'),
          '--eval',
          resolve(SHARED, 'data/zog_stories_eval.jsonl'),
          '--r',
          '8',
          '--alpha',
          '16',
          '--targets',
          'q_proj,k_proj,v_proj',
          '--lr',
          '5e-3',
          '--epochs',
          '8',
          '--batch',
          '4',
          '--out',
          out,
        ],
        1_800_000,
      );
      expect(run.status, run.stderr).toBe(0);
      const result = JSON.parse(run.last);
      console.log(run.last);
      expect(result.steps).toBe(48);
      expect(result.eval_loss_before).toBeGreaterThan(1.5);
      expect(result.eval_loss_after).toBeLessThan(0.3);
      expect(result.train_loss_last).toBeLessThan(result.train_loss_first);
      expect(result.tokens_per_s).toBeGreaterThan(0);
      expect(readdirSync(out).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);

      const prompt = ['--prompt', 'Once upon a time, there was a little', '--max-new-tokens', '20', '--temperature', '0'];
      const adapted = webtune(['generate', '--model', STORIES_260K, '--adapter', out, ...prompt]);
      const base = webtune(['generate', '--model', STORIES_260K, ...prompt]);
      expect(adapted.status).toBe(0);
      expect(adapted.last).toContain('Zog');
      expect(base.last).not.toContain('Zog');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

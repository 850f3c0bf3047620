import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGoldenCase } from '../../src/model/golden';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { GOLDEN_TOLERANCE, checkGoldenCase } from '../../src/train/golden-check';
import { testGpu } from '../helpers/gpu';
import { GOLDEN_DIR, SHARED } from '../helpers/paths';

// Every case directory in ../shared/golden runs, so new cases are covered without code changes.
const cases = readdirSync(GOLDEN_DIR, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

describe('golden cases from PyTorch', () => {
  it('finds at least the stories260K case', () => {
    expect(cases).toContain('stories260K-qkv-r4');
  });

  for (const name of cases) {
    it(`${name}: loss, gradients and one AdamW step match`, async () => {
      const golden = await loadGoldenCase(nodeFileSource(resolve(GOLDEN_DIR, name)));
      const { weights } = await openModel(nodeFileSource(resolve(SHARED, 'models', golden.model)));
      const result = await checkGoldenCase(await testGpu(), golden, weights);
      console.log(JSON.stringify(result));
      expect(result.loss_rel_err).toBeLessThanOrEqual(GOLDEN_TOLERANCE.lossRelErr);
      expect(result.grad_max_rel_err).toBeLessThanOrEqual(GOLDEN_TOLERANCE.gradMaxRelErr);
      expect(result.adamw_max_abs_err).toBeLessThanOrEqual(GOLDEN_TOLERANCE.adamwMaxAbsErr);
      if (result.logits_max_abs_err !== null) expect(result.logits_max_abs_err).toBeLessThan(1e-4);
      expect(result.ok).toBe(true);
    });
  }
});

import { copyFile, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GoldenCaseError } from '../../src/model/errors';
import { loadGoldenCase } from '../../src/model/golden';
import { nodeFileSource } from '../../src/model/node-file-source';
import { GOLDEN_DIR, tempDir } from './helpers';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function goldenCopy(): Promise<string> {
  const dir = await tempDir('golden');
  dirs.push(dir);
  for (const f of await readdir(GOLDEN_DIR)) await copyFile(path.join(GOLDEN_DIR, f), path.join(dir, f));
  return dir;
}

async function goldenError(dir: string): Promise<GoldenCaseError> {
  try {
    await loadGoldenCase(nodeFileSource(dir));
  } catch (err) {
    expect(err).toBeInstanceOf(GoldenCaseError);
    return err as GoldenCaseError;
  }
  throw new Error('expected a GoldenCaseError');
}

describe('loadGoldenCase', () => {
  it('loads the shared stories260K case', async () => {
    const c = await loadGoldenCase(nodeFileSource(GOLDEN_DIR));
    expect(c.name).toBe('stories260K-qkv-r4');
    expect(c.model).toBe('stories260K');
    expect(c.lora).toEqual({ r: 4, alpha: 8, scaling: 2, targetModules: ['q_proj', 'k_proj', 'v_proj'], dropout: 0, useRslora: false });
    expect(c.inputIds.length).toBe(2);
    expect(c.inputIds[0].slice(0, 5)).toEqual([1, 403, 407, 261, 378]);
    expect(c.labels[1].slice(-6)).toEqual(Array(6).fill(-100));
    expect(c.loss).toBeCloseTo(0.4040023982524872, 12);
    expect(c.lastPositionLogitsRow0First8).toHaveLength(8);
    expect(c.adamw).toEqual({ lr: 0.001, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });

    // 5 layers x 3 projections x (A, B).
    for (const tensors of [c.adapterInit, c.grads, c.adapterAfterStep]) expect(tensors.size).toBe(30);
    const a = c.adapterInit.get('base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight')!;
    const b = c.adapterInit.get('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight')!;
    expect(a.shape).toEqual([4, 64]);
    expect(b.shape).toEqual([32, 4]);
    expect(b.data.some((x) => x !== 0)).toBe(true);
    expect(c.grads.get('base_model.model.model.layers.4.self_attn.v_proj.lora_B.weight')!.shape).toEqual([32, 4]);
  });

  it('holds tensors consistent with one AdamW step', async () => {
    // After one step from zero moments, bias correction makes the update lr * g / (|g| + eps).
    const c = await loadGoldenCase(nodeFileSource(GOLDEN_DIR));
    const { lr, eps, weightDecay } = c.adamw;
    for (const [name, init] of c.adapterInit) {
      const g = c.grads.get(name)!.data;
      const after = c.adapterAfterStep.get(name)!.data;
      init.data.forEach((p, i) => {
        const expected = p * (1 - lr * weightDecay) - (lr * g[i]) / (Math.abs(g[i]) + eps);
        expect(Math.abs(after[i] - expected), `${name}[${i}]`).toBeLessThan(1e-6);
      });
    }
  });

  it('names a missing tensor file and the directory', async () => {
    const dir = await goldenCopy();
    await unlink(path.join(dir, 'grads.safetensors'));
    const err = await goldenError(dir);
    expect(err.file).toBe('grads.safetensors');
    expect(err.message).toContain('grads.safetensors');
    expect(err.message).toContain(dir);
    expect(err.message).toMatch(/missing/);
  });

  it('names a damaged tensor file', async () => {
    const dir = await goldenCopy();
    const bytes = await readFile(path.join(dir, 'adapter_after_one_adamw_step.safetensors'));
    await writeFile(path.join(dir, 'adapter_after_one_adamw_step.safetensors'), bytes.subarray(0, bytes.length - 1));
    const err = await goldenError(dir);
    expect(err.file).toBe('adapter_after_one_adamw_step.safetensors');
    expect(err.message).toMatch(/truncated/);
  });

  it('rejects an invalid case.json', async () => {
    const dir = await goldenCopy();
    const json = JSON.parse(await readFile(path.join(GOLDEN_DIR, 'case.json'), 'utf8'));
    const write = (value: unknown) => writeFile(path.join(dir, 'case.json'), JSON.stringify(value));

    await write({ ...json, input_ids: [json.input_ids[0], json.input_ids[1].slice(1)] });
    expect((await goldenError(dir)).message).toMatch(/case\.json.*unequal length/);

    await write({ ...json, labels: [json.labels[0]] });
    expect((await goldenError(dir)).message).toMatch(/case\.json.*labels of a different shape/);

    await write({ ...json, lora: { ...json.lora, scaling: 3 } });
    expect((await goldenError(dir)).message).toMatch(/lora\.scaling 3/);

    const { loss: _, ...noLoss } = json;
    await write(noLoss);
    expect((await goldenError(dir)).message).toMatch(/"loss"/);

    await writeFile(path.join(dir, 'case.json'), '{"model": ');
    const err = await goldenError(dir);
    expect(err.file).toBe('case.json');
    expect(err.message).toMatch(/not valid JSON/);
  });
});

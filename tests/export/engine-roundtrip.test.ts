import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergedModelFiles } from '../../src/export/merge';
import { writeFolder } from '../../src/export/node-folder';
import { peftAdapterFiles, readPeftAdapter } from '../../src/export/peft';
import { LoraWeights } from '../../src/lora/adapter';
import { validateLoraConfig } from '../../src/lora/config';
import { filesFromList } from '../../src/model/file-source';
import { loadGoldenCase } from '../../src/model/golden';
import { LlamaModel } from '../../src/model/llama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { makeBatch } from '../../src/train/batch';
import { testGpu } from '../helpers/gpu';
import { GOLDEN_DIR, STORIES_260K } from '../helpers/paths';

async function goldenAdapter() {
  const golden = await loadGoldenCase(nodeFileSource(resolve(GOLDEN_DIR, 'stories260K-qkv-r4')));
  const config = validateLoraConfig({ r: golden.lora.r, alpha: golden.lora.alpha, targets: golden.lora.targetModules });
  return { golden, adapter: { config, tensors: golden.adapterInit } };
}

describe('exported adapters run in the engine', () => {
  it('the PEFT export of the golden init adapter, reloaded, reproduces the golden loss', async () => {
    const { golden, adapter } = await goldenAdapter();
    const files = peftAdapterFiles(adapter, { baseModel: 'stories260K' });
    const opened = await openModel(nodeFileSource(STORIES_260K));
    const reloaded = await readPeftAdapter(
      filesFromList(
        new Map(Object.entries(files).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])])),
        'exported adapter',
      ),
      opened.config,
    );
    const gpu = await testGpu();
    const model = await LlamaModel.load(gpu, opened.weights);
    const lora = LoraWeights.fromTensors(gpu, opened.config, reloaded.config, reloaded.tensors, 'exported adapter');
    const batch = makeBatch(golden.inputIds, golden.labels);
    model.loss(batch, lora);
    const loss = (await model.readLossSum(batch)) / batch.targetCount;
    expect(Math.abs(loss - golden.loss) / golden.loss).toBeLessThan(1e-4);
  });

  it('a merged model gives the adapted model logits within 1e-4 relative', async () => {
    const { golden, adapter } = await goldenAdapter();
    const dir = mkdtempSync(join(tmpdir(), 'webtune-merged-'));
    try {
      await writeFolder(dir, mergedModelFiles(nodeFileSource(STORIES_260K), adapter, { dtype: 'same' }));
      const gpu = await testGpu();
      const base = await openModel(nodeFileSource(STORIES_260K));
      const adapted = await LlamaModel.load(gpu, base.weights);
      const lora = LoraWeights.fromTensors(gpu, base.config, adapter.config, adapter.tensors, 'golden');
      const merged = await LlamaModel.load(gpu, (await openModel(nodeFileSource(dir))).weights);
      const batch = makeBatch([golden.inputIds[0]]);
      const expected = await adapted.lastPositionLogits(batch, lora);
      const actual = await merged.lastPositionLogits(batch, null);
      const scale = Math.max(...Array.from(expected, Math.abs));
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
      expect(worst).toBeLessThan(1e-4);
      const unadapted = await adapted.lastPositionLogits(batch, null);
      expect(Math.max(...Array.from(unadapted, (v, i) => Math.abs(v - expected[i])))).toBeGreaterThan(1e-3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

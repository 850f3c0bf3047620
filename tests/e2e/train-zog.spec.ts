import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { unzipSync, strFromU8 } from 'fflate';
import { Q4_K_M_FILE, writeStoriesQ4KM } from './gguf-fixtures';
import { collectErrors, compare, DATA_DIR, importDataset, loadGgufModel, openApp, setSettings, startTraining } from './helpers';

const PROMPT = 'Once upon a time, there was a little';
/** The recipe measured with PyTorch in ../shared/README.md: 48 steps, eval loss 1.69 -> 0.09. */
const EPOCHS = 8;

/**
 * The base is the GGUF that llama-quantize's Q4_K_M makes of stories260K (Q5_0, Q8_0 and F16: no
 * row of it fits a K-quant), picked as a file: training runs against exactly its quantized weights.
 * The Hugging Face folder's own training run is the CLI's acceptance test (tests/cli/train.test.ts).
 */
test('stories260K learns Zog the dragon in the browser, on its Q4_K_M GGUF', async ({ page }, testInfo) => {
  // SwiftShader runs every kernel on the CPU: the whole test took 4 to 8 minutes on 2 busy cores.
  test.setTimeout(40 * 60_000);
  const errors = collectErrors(page);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'webtune-e2e-zog-'));
  const { file } = await writeStoriesQ4KM(dir);
  await openApp(page);

  await loadGgufModel(page, [file]);
  await expect(page.getByTestId('model-architecture')).toHaveText('llama');
  await expect(page.getByTestId('model-format')).toHaveText('GGUF');
  await expect(page.getByTestId('model-tokenizer')).toHaveText("From the GGUF, exactly as llama.cpp's");
  await expect(page.locator('[data-step="model"]').getByTestId('memory-estimate')).toContainText('GPU memory for training');

  await importDataset(page, 'train', path.join(DATA_DIR, 'zog_stories_train.jsonl'));
  await importDataset(page, 'eval', path.join(DATA_DIR, 'zog_stories_eval.jsonl'));
  await expect(page.getByTestId('dataset-item')).toHaveCount(2);

  await setSettings(page, {
    targets: ['q_proj', 'k_proj', 'v_proj'],
    numbers: { r: 8, alpha: 16, lr: 5e-3, batchSize: 4, epochs: EPOCHS, evalEvery: 12 },
  });
  await expect(page.getByTestId('run-plan')).toContainText(`${6 * EPOCHS} in all`);

  const started = Date.now();
  await startTraining(page, 'zog');
  const status = page.getByTestId('run-status');
  await expect(status).toHaveAttribute('data-state', 'completed', { timeout: 35 * 60_000 });
  const trainingSeconds = (Date.now() - started) / 1000;
  testInfo.annotations.push({ type: 'training time', description: `${trainingSeconds.toFixed(0)} s for ${6 * EPOCHS} steps` });

  await expect(page.getByTestId('run-step')).toHaveText(`${6 * EPOCHS} / ${6 * EPOCHS}`);
  const evalLoss = Number(await page.getByTestId('eval-loss').getAttribute('data-value'));
  testInfo.annotations.push({ type: 'eval loss after training (Q4_K_M GGUF base)', description: String(evalLoss) });
  const chart = page.getByTestId('loss-chart');
  await expect(chart).toHaveAttribute('data-train-points', String(6 * EPOCHS));
  await page.screenshot({ path: testInfo.outputPath('training-finished.png'), fullPage: true });
  expect(evalLoss).toBeLessThan(0.3);

  const { base, adapted } = await compare(page, PROMPT);
  testInfo.annotations.push({ type: 'base', description: base }, { type: 'adapted', description: adapted });
  await page.screenshot({ path: testInfo.outputPath('compare.png'), fullPage: true });
  expect(base).not.toContain('Zog');
  expect(adapted).toContain('Zog');

  await page.getByTestId('step-adapters').click();
  const row = page.getByTestId('adapter-row');
  await expect(row).toHaveCount(1);
  await expect(row).toContainText(Q4_K_M_FILE);
  await expect(row).toContainText('zog stories train');
  const downloadEvent = page.waitForEvent('download');
  await row.getByTestId('adapter-download').click();
  const download = await downloadEvent;
  const files = unzipSync(new Uint8Array(await (await download.createReadStream()).toArray().then((c) => Buffer.concat(c))));
  expect(Object.keys(files).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  const config = JSON.parse(strFromU8(files['adapter_config.json']));
  expect(config).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'k_proj', 'v_proj'] });

  // The GGUF LoRA for this base: FROM names the GGUF file it was trained on.
  await page.getByTestId('export-format').selectOption('gguf');
  const [lora] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-download').click()]);
  expect(lora.suggestedFilename()).toBe('zog.gguf');
  await lora.saveAs(path.join(dir, 'zog.gguf'));
  expect(new TextDecoder().decode(readFileSync(path.join(dir, 'zog.gguf')).subarray(0, 4))).toBe('GGUF');
  await expect(page.getByTestId('export-modelfile')).toHaveText(`FROM ./${Q4_K_M_FILE}\nADAPTER ./zog.gguf\n`);
  await page.screenshot({ path: testInfo.outputPath('adapters.png'), fullPage: true });
  expect(errors).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

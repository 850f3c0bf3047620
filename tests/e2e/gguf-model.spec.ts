import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GGMLQuantizationType, gguf } from '@huggingface/gguf';
import { expect, type Page, test } from '@playwright/test';
import { zipSync } from 'fflate';
import { writeStore, writeStoriesQ4KM } from './gguf-fixtures';
import { collectErrors, GOLDEN_DIR, openApp } from './helpers';

/** Presses export and saves the download into `dir`. */
async function download(page: Page, dir: string): Promise<{ name: string; path: string; bytes: Uint8Array }> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-download').click()]);
  const saved = path.join(dir, file.suggestedFilename());
  await file.saveAs(saved);
  await expect(page.getByTestId('export-file')).toContainText(`Downloaded ${file.suggestedFilename()}`);
  return { name: file.suggestedFilename(), path: saved, bytes: new Uint8Array(readFileSync(saved)) };
}

test('GGUF bases in the model step: a damaged file is refused by name, an Ollama store offers its models, exports fit a GGUF base', async ({
  page,
}, testInfo) => {
  test.setTimeout(10 * 60_000);
  const errors = collectErrors(page);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'webtune-e2e-gguf-'));
  try {
    const { bytes } = await writeStoriesQ4KM(dir);
    const damaged = path.join(dir, 'damaged.gguf');
    await writeFile(damaged, bytes.subarray(0, bytes.length - 1000));
    const store = await writeStore(dir, 'stories:260k', bytes);
    await openApp(page);

    // A truncated file: the model step's error names the file and the tensor cut off.
    await page.getByTestId('step-model').click();
    await page.getByTestId('model-gguf-input').setInputFiles(damaged);
    await expect(page.getByTestId('model-error')).toContainText('damaged.gguf is not a valid GGUF file: tensor');
    await expect(page.getByTestId('model-error')).toContainText('ends past the end of the file');
    await expect(page.getByTestId('model-info')).toBeHidden();

    // Ollama's models folder: choose the model, and its blob (no extension) loads as a GGUF.
    await page.getByTestId('model-folder-input').setInputFiles(store);
    await expect(page.getByTestId('ollama-choice')).toBeVisible();
    await expect(page.getByTestId('ollama-model').locator('option')).toHaveText(['stories:260k']);
    await page.getByTestId('ollama-load').click();
    await expect(page.getByTestId('model-name')).toHaveText('stories:260k');
    await expect(page.getByTestId('model-error')).toBeHidden();
    await expect(page.getByTestId('model-format')).toHaveText('GGUF');
    await expect(page.getByTestId('model-quantization')).toHaveText(
      /^Q5_0: 28 tensors, 112.4 KiB · F16: 5 tensors, 107.5 KiB · Q8_0: 3 tensors, 38.3 KiB · F32: 11 tensors, 2.75 KiB$/,
    );
    await expect(page.getByTestId('model-tokenizer')).toHaveText("From the GGUF, exactly as llama.cpp's");
    await expect(page.getByTestId('model-tokenizer-problems')).toHaveCount(0);
    await expect(page.locator('[data-step="model"]').getByTestId('memory-estimate')).toContainText('GPU memory for training');
    await page.screenshot({ path: testInfo.outputPath('gguf-model.png'), fullPage: true });

    // The golden adapter (a PEFT zip) imported for this base, exported as a GGUF LoRA and as a merged GGUF.
    const zip = zipSync({
      'adapter_config.json': new TextEncoder().encode(
        JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'k_proj', 'v_proj'] }),
      ),
      'adapter_model.safetensors': new Uint8Array(readFileSync(path.join(GOLDEN_DIR, 'adapter_init.safetensors'))),
    });
    await writeFile(path.join(dir, 'golden.zip'), zip);
    await page.getByTestId('step-adapters').click();
    await page.getByTestId('adapter-import-files').setInputFiles(path.join(dir, 'golden.zip'));
    await expect(page.getByTestId('adapter-import-notice')).toHaveAttribute('data-kind', 'ok');
    await expect(page.getByTestId('export-format').locator('option[value="merged"]')).toBeDisabled();

    await page.getByTestId('export-format').selectOption('gguf');
    const lora = await download(page, dir);
    expect(lora.name).toBe('golden.gguf');
    expect(new TextDecoder().decode(lora.bytes.subarray(0, 4))).toBe('GGUF');
    await expect(page.getByTestId('export-modelfile')).toHaveText('FROM stories:260k\nADAPTER ./golden.gguf\n');

    await page.getByTestId('export-format').selectOption('merged-gguf');
    await page.getByTestId('export-gguf-type').selectOption('Q8_0');
    const merged = await download(page, dir);
    expect(merged.name).toBe('golden-merged.gguf');
    const parsed = await gguf(merged.path, { allowLocalFile: true });
    expect(parsed.tensorInfos.find((t) => t.name === 'blk.0.attn_q.weight')?.dtype).toBe(GGMLQuantizationType.Q8_0);
    expect((parsed.metadata as Record<string, unknown>)['tokenizer.ggml.model']).toBe('llama');
    await expect(page.getByTestId('export-modelfile')).toHaveText('FROM ./golden-merged.gguf\n');
    await expect(page.getByTestId('export-commands')).toHaveText('ollama create golden-merged -f Modelfile\nollama run golden-merged');
    expect(errors).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

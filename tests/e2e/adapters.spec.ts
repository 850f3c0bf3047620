import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gguf } from '@huggingface/gguf';
import { expect, type Page, test } from '@playwright/test';
import { unzipSync, zipSync } from 'fflate';
import { collectErrors, compareWithScale, GOLDEN_DIR, loadLocalModel, openApp } from './helpers';

/** adapter_config.json as Python PEFT 0.13 writes it for the golden case's r=4, alpha=8 q/k/v adapter. */
const PYTHON_PEFT_CONFIG = {
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: 'stories260K',
  bias: 'none',
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 8,
  lora_dropout: 0.0,
  megatron_config: null,
  megatron_core: 'megatron.core',
  modules_to_save: null,
  peft_type: 'LORA',
  r: 4,
  rank_pattern: {},
  revision: null,
  target_modules: ['q_proj', 'v_proj', 'k_proj'],
  task_type: 'CAUSAL_LM',
  use_dora: false,
  use_rslora: false,
};

/** The golden case's init adapter (A and B non-zero, written by PyTorch) as a zipped PEFT folder. */
function goldenPeftZip(): Uint8Array {
  return zipSync({
    'adapter_config.json': new TextEncoder().encode(JSON.stringify(PYTHON_PEFT_CONFIG, null, 2)),
    'adapter_model.safetensors': new Uint8Array(readFileSync(path.join(GOLDEN_DIR, 'adapter_init.safetensors'))),
  });
}

async function adapterNames(page: Page): Promise<string[]> {
  return page.getByTestId('adapter-name').allInnerTexts();
}

/** Exports the adapter in `format` through the page and returns the downloaded file's path. */
async function exportThroughPage(page: Page, dir: string, format: 'peft' | 'gguf' | 'merged', dtype?: 'same' | 'f32'): Promise<string> {
  await page.getByTestId('export-format').selectOption(format);
  if (dtype) await page.getByTestId('export-dtype').selectOption(dtype);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-download').click()]);
  const file = path.join(dir, download.suggestedFilename());
  await download.saveAs(file);
  await expect(page.getByTestId('export-file')).toContainText(`Downloaded ${download.suggestedFilename()}`);
  return file;
}

test('imports a PEFT zip, refuses a damaged one, and exports PEFT, GGUF and merged downloads without network requests', async ({
  page,
  context,
  baseURL,
}) => {
  test.setTimeout(10 * 60_000);
  const errors = collectErrors(page);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'webtune-e2e-adapters-'));
  // Recorded on the context, which also sees requests made by the page's workers.
  const requests: string[] = [];
  context.on('request', (request) => requests.push(request.url()));
  try {
    await openApp(page);
    await loadLocalModel(page);
    const zip = goldenPeftZip();
    await writeFile(path.join(dir, 'golden-qkv.zip'), zip);
    await writeFile(path.join(dir, 'damaged.zip'), zip.slice(0, Math.floor(zip.length * 0.6)));
    const loaded = requests.length;

    await page.getByTestId('step-adapters').click();
    await page.getByTestId('adapter-import-files').setInputFiles(path.join(dir, 'golden-qkv.zip'));
    await expect(page.getByTestId('adapter-import-notice')).toHaveAttribute('data-kind', 'ok');
    await expect(page.getByTestId('adapter-import-notice')).toContainText('Imported "golden-qkv" (r 4, alpha 8 on q_proj, k_proj, v_proj)');
    await expect(page.getByTestId('adapter-row')).toHaveCount(1);
    expect(await adapterNames(page)).toEqual(['golden-qkv']);
    await expect(page.getByTestId('adapter-imported')).toHaveText('golden-qkv.zip (trained on stories260K)');

    await page.getByTestId('adapter-import-files').setInputFiles(path.join(dir, 'damaged.zip'));
    await expect(page.getByTestId('adapter-import-notice')).toHaveAttribute('data-kind', 'error');
    await expect(page.getByTestId('adapter-import-notice')).toContainText('damaged.zip is not a valid zip file');
    await expect(page.getByTestId('adapter-import-notice')).toContainText('truncated or damaged');
    expect(await adapterNames(page)).toEqual(['golden-qkv']);

    const peftFile = await exportThroughPage(page, dir, 'peft');
    expect(path.basename(peftFile)).toBe('golden-qkv.zip');
    const peft = unzipSync(new Uint8Array(readFileSync(peftFile)));
    expect(Object.keys(peft).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    expect(JSON.parse(new TextDecoder().decode(peft['adapter_config.json']))).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8 });
    await expect(page.getByTestId('export-modelfile')).toHaveText('FROM stories260K\nADAPTER ./golden-qkv\n');
    await expect(page.getByTestId('export-commands')).toHaveText(
      'unzip golden-qkv.zip -d golden-qkv\nollama create golden-qkv -f Modelfile\nollama run golden-qkv',
    );
    const [modelfile] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-modelfile-download').click()]);
    expect(modelfile.suggestedFilename()).toBe('Modelfile');
    await modelfile.saveAs(path.join(dir, 'Modelfile'));
    expect(readFileSync(path.join(dir, 'Modelfile'), 'utf8')).toBe('FROM stories260K\nADAPTER ./golden-qkv\n');

    await page.getByTestId('export-ollama-base').fill('stories:260k');
    const ggufFile = await exportThroughPage(page, dir, 'gguf');
    expect(path.basename(ggufFile)).toBe('golden-qkv.gguf');
    const parsed = await gguf(ggufFile, { allowLocalFile: true });
    const metadata = parsed.metadata as Record<string, unknown>;
    expect(metadata['general.type']).toBe('adapter');
    expect(metadata['general.architecture']).toBe('llama');
    expect(metadata['adapter.lora.alpha']).toBe(8);
    expect(parsed.tensorInfos.map((t) => t.name)).toContain('blk.4.attn_v.weight.lora_b');
    expect(parsed.tensorInfos.length).toBe(5 * 3 * 2);
    await expect(page.getByTestId('export-modelfile')).toHaveText('FROM stories:260k\nADAPTER ./golden-qkv.gguf\n');
    await expect(page.getByTestId('export-commands')).toBeVisible();

    const mergedFile = await exportThroughPage(page, dir, 'merged', 'f32');
    expect(path.basename(mergedFile)).toBe('golden-qkv-merged.zip');
    const merged = unzipSync(new Uint8Array(readFileSync(mergedFile)));
    expect(Object.keys(merged)).toEqual(
      expect.arrayContaining(['golden-qkv-merged/config.json', 'golden-qkv-merged/model.safetensors', 'golden-qkv-merged/tokenizer.json']),
    );
    expect(JSON.parse(new TextDecoder().decode(merged['golden-qkv-merged/config.json'])).torch_dtype).toBe('float32');
    await expect(page.getByTestId('export-modelfile')).toHaveText('FROM ./golden-qkv-merged\n');
    await expect(page.getByTestId('export-commands')).toContainText('ollama create golden-qkv-merged -f Modelfile');

    // Only the downloads' own blob: URLs: nothing was fetched, not even from the page origin.
    expect(requests.slice(loaded).filter((url) => !url.startsWith('blob:'))).toEqual([]);

    // The imported adapter drives generation; switched off it gives the base model's text.
    const prompt = 'Once upon a time, there was a little';
    const on = await compareWithScale(page, prompt, { on: true, scale: 1, maxNewTokens: 12 });
    expect(on.adapted).not.toBe(on.base);
    const off = await compareWithScale(page, prompt, { on: false, maxNewTokens: 12 });
    expect(off.adapted).toBe(off.base);
    await expect(page.getByTestId('compare-adapted').locator('..')).toContainText('adapter off');

    const origin = new URL(baseURL!).origin;
    const outside = requests.filter((url) => !url.startsWith('blob:') && !url.startsWith('data:') && new URL(url).origin !== origin);
    expect(outside).toEqual([]);
    expect(errors).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

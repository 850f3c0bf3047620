import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, type Page } from '@playwright/test';

/** Shared fixtures live beside the repository and are read in place, never copied into it. */
export const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared');
export const MODEL_DIR = path.join(SHARED, 'models/stories260K');
export const DATA_DIR = path.join(SHARED, 'data');

/** Opens the page and waits until the worker has checked WebGPU and read the stored records. */
export async function openApp(page: Page): Promise<void> {
  await page.goto('/');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  await expect(page.locator('body')).toHaveAttribute('data-webgpu', 'ready');
}

/** Collects uncaught page errors and console errors, to assert none happened. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console error: ${message.text()}`);
  });
  return errors;
}

export async function loadLocalModel(page: Page, dir = MODEL_DIR): Promise<void> {
  await page.getByTestId('step-model').click();
  await page.getByTestId('model-folder-input').setInputFiles(dir);
  await expect(page.getByTestId('model-name')).toHaveText(path.basename(dir));
}

/** Loads GGUF file(s) through the model step's file picker (the first one names the model). */
export async function loadGgufModel(page: Page, files: string[]): Promise<void> {
  await page.getByTestId('step-model').click();
  await page.getByTestId('model-gguf-input').setInputFiles(files);
  await expect(page.getByTestId('model-name')).toHaveText(path.basename(files[0]));
}

/** Imports a JSONL file through the preview, confirming it. */
export async function importDataset(page: Page, role: 'train' | 'eval', file: string): Promise<void> {
  await page.getByTestId('step-data').click();
  await page.getByTestId(`dataset-file-${role}`).setInputFiles(file);
  await expect(page.getByTestId('import-preview')).toBeVisible();
  await page.getByTestId('import-confirm').click();
  await expect(page.getByTestId('import-preview')).toBeHidden();
}

export interface SettingValues {
  targets?: string[];
  numbers: Record<string, number>;
}

export async function setSettings(page: Page, values: SettingValues): Promise<void> {
  await page.getByTestId('step-settings').click();
  const { targets, numbers } = values;
  if (targets) {
    for (const box of await page.locator('[data-testid^="target-"]').all()) {
      const name = (await box.getAttribute('data-testid'))!.slice('target-'.length);
      await box.setChecked(targets.includes(name));
    }
  }
  for (const [key, value] of Object.entries(numbers)) await page.getByTestId(`setting-${key}`).fill(String(value));
  await expect(page.getByTestId('settings-error')).toBeHidden();
}

/** Starts training from the settings step and waits until the run has begun its steps. */
export async function startTraining(page: Page, name?: string): Promise<void> {
  if (name) await page.getByTestId('run-name').fill(name);
  await expect(page.getByTestId('start-training')).toBeEnabled();
  await page.getByTestId('start-training').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', /running|completed/);
}

/** Greedy continuations of `prompt` by the base model and with the newest adapter. */
export async function compare(page: Page, prompt: string, maxNewTokens = 24): Promise<{ base: string; adapted: string }> {
  await page.getByTestId('step-compare').click();
  await page.getByTestId('compare-prompt').fill(prompt);
  await page.getByTestId('compare-max-tokens').fill(String(maxNewTokens));
  await page.getByTestId('compare-temperature').fill('0');
  await page.getByTestId('compare-generate').click();
  await expect(page.getByTestId('compare-adapted')).toHaveAttribute('data-state', 'done');
  return {
    base: await page.getByTestId('compare-base').getByTestId('continuation').innerText(),
    adapted: await page.getByTestId('compare-adapted').getByTestId('continuation').innerText(),
  };
}

export const GOLDEN_DIR = path.join(SHARED, 'golden/stories260K-qkv-r4');

/** Greedy continuations of the base model and with the newest adapter, at `scale` or with the adapter off. */
export async function compareWithScale(page: Page, prompt: string, opts: { on: boolean; scale?: number; maxNewTokens?: number }) {
  await page.getByTestId('step-compare').click();
  await page.getByTestId('compare-adapter-on').setChecked(opts.on);
  if (opts.on) await page.getByTestId('compare-adapter-scale').fill(String(opts.scale ?? 1));
  return compare(page, prompt, opts.maxNewTokens);
}

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { collectErrors, MODEL_DIR, openApp } from './helpers';

/**
 * A folder picked once opens again after a reload. The browser's folder picker is a native dialog
 * Playwright cannot drive, so `showDirectoryPicker` is replaced by one that answers with a real
 * directory handle: a folder of the page's Origin Private File System holding stories260K. Storing
 * that handle, reading it back after the reload, the permission check and the walk over the folder
 * are the page's own code; the permission prompt never shows (OPFS handles are always granted).
 */
test('a model folder chosen with the File System Access API opens again after a reload without choosing it again', async ({ page }) => {
  const errors = collectErrors(page);
  await page.addInitScript(() => {
    (window as unknown as { showDirectoryPicker: () => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker = async () =>
      (await navigator.storage.getDirectory()).getDirectoryHandle('stories260K');
  });
  await openApp(page);
  const files = readdirSync(MODEL_DIR).map((name) => [name, readFileSync(path.join(MODEL_DIR, name)).toString('base64')]);
  await page.evaluate(async (files) => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('stories260K', { create: true });
    for (const [name, base64] of files) {
      const writable = await (await dir.getFileHandle(name, { create: true })).createWritable();
      await writable.write(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
      await writable.close();
    }
  }, files);

  await page.getByTestId('remember-pick').click();
  await expect(page.getByTestId('model-name')).toHaveText('stories260K');
  await expect(page.getByTestId('remembered-folder')).toHaveText(/stories260K/);

  await page.reload();
  await openApp(page);
  await expect(page.getByTestId('remembered-folder')).toHaveCount(1);
  await page.getByTestId('remembered-open').click();
  await expect(page.getByTestId('model-name')).toHaveText('stories260K');
  await expect(page.getByTestId('model-architecture')).toHaveText('llama');
  await page.screenshot({ path: test.info().outputPath('reopened.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('where the File System Access API is missing, the page says a folder cannot be kept', async ({ page }) => {
  await page.addInitScript(() => {
    delete (Window.prototype as { showDirectoryPicker?: unknown }).showDirectoryPicker;
    delete (window as { showDirectoryPicker?: unknown }).showDirectoryPicker;
  });
  await openApp(page);
  await expect(page.getByTestId('remember-unsupported')).toContainText('This browser cannot keep a picked folder between visits');
  await expect(page.getByTestId('remember-pick')).toHaveCount(0);
  await expect(page.getByTestId('model-folder-input')).toHaveCount(1);
});

import { expect, test } from '@playwright/test';
import { collectErrors, loadLocalModel, openApp } from './helpers';

test('the page finds WebGPU in its worker and passes the GPU self-check', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await page.goto('/');
  await expect(page).toHaveTitle('webtune');

  const body = page.locator('body');
  await expect(body).toHaveAttribute('data-webgpu', /^(ready|unavailable|failed)$/);
  await page.getByTestId('gpu-badge').locator('summary').click();

  // Kept whatever the outcome, so a failure shows what the page said.
  const screenshot = testInfo.outputPath('webgpu-status.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  await testInfo.attach('webgpu-status', { path: screenshot, contentType: 'image/png' });

  const badge = await page.getByTestId('gpu-badge').innerText();
  expect(await body.getAttribute('data-webgpu'), badge).toBe('ready');
  await expect(page.getByText('GPU self-check passed')).toBeVisible();
  await expect(page.getByTestId('gpu-badge').locator('.facts')).toContainText('Max storage binding');
  await expect(page.getByTestId('webgpu-banner')).toBeHidden();
  expect(errors).toEqual([]);
});

test('the model step stores the weights in the precision chosen and says which', async ({ page }) => {
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);
  // stories260K ships F32, which "as stored" keeps.
  await expect(page.getByTestId('model-weights')).toHaveText(/^f32, /);
  const weightsShare = page.locator('[data-step="model"]').getByTestId('memory-estimate');
  const f32Estimate = await weightsShare.innerText();
  await page.getByTestId('weights-precision').selectOption('bf16');
  await loadLocalModel(page);
  await expect(page.getByTestId('model-weights')).toHaveText(/^bf16, /);
  await expect(weightsShare).not.toHaveText(f32Estimate);
  expect(errors).toEqual([]);
});

test('without WebGPU the page says so and what to use instead', async ({ playwright, baseURL }, testInfo) => {
  const browser = await playwright.chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-features=WebGPU'],
  });
  try {
    const page = await browser.newPage({ baseURL });
    const errors = collectErrors(page);
    await page.goto('/');
    await expect(page.locator('body')).toHaveAttribute('data-webgpu', 'unavailable');
    const banner = page.getByTestId('webgpu-banner');
    await expect(banner).toContainText('WebGPU is not available here');
    await expect(banner).toContainText('Chrome or Edge 113+');
    await expect(page.getByTestId('webgpu-state')).toHaveText('WebGPU unavailable');
    // Data import does not need the GPU and still works.
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
    await page.screenshot({ path: testInfo.outputPath('no-webgpu.png'), fullPage: true });
    await expect(page.getByTestId('hub-load')).toBeDisabled();
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
});

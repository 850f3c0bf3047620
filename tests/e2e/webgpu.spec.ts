import { expect, test } from '@playwright/test';

test('the landing page finds WebGPU and passes the GPU self-check', async ({ page }, testInfo) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console error: ${message.text()}`);
  });

  await page.goto('/');
  await expect(page).toHaveTitle('webtune');

  const body = page.locator('body');
  await expect(body).toHaveAttribute('data-webgpu', /^(ready|unavailable|failed)$/);

  // Kept whatever the outcome, so a failure shows what the page said.
  const screenshot = testInfo.outputPath('webgpu-status.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  await testInfo.attach('webgpu-status', { path: screenshot, contentType: 'image/png' });

  const panel = await page.locator('.panel').innerText();
  expect(await body.getAttribute('data-webgpu'), panel).toBe('ready');
  await expect(page.getByText('GPU self-check passed')).toBeVisible();
  await expect(page.locator('.facts')).toContainText('Max storage binding');
  expect(errors).toEqual([]);
});

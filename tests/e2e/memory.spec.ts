import { expect, test } from '@playwright/test';
import { collectErrors, loadLocalModel, openApp, setSettings } from './helpers';

const GIB = 2 ** 30;

test('the memory estimate picks activation recomputation when the run exceeds the budget, and says so', async ({ page }, testInfo) => {
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);
  await setSettings(page, { numbers: { batchSize: 4, maxLength: 256 } });
  const settings = page.locator('[data-step="settings"]');
  const line = settings.getByTestId('memory-recompute');
  const total = settings.getByTestId('memory-total');

  // stories260K fits WebGPU's unknown-memory default of 4 GiB by far: automatic means off.
  await expect(line).toHaveAttribute('data-on', 'false');
  await expect(line).toContainText('off: training fits the default budget of 4 GiB');
  const without = await total.textContent();

  // A budget below what the run needs without recomputation: automatic turns it on and the total drops.
  await settings.getByTestId('setting-memoryBudget').fill(String((4 * 2 ** 20) / GIB));
  await expect(line).toHaveAttribute('data-on', 'true');
  await expect(line).toContainText('on, chosen automatically');
  await expect(line).toContainText(`without it training needs ${without}`);
  await expect(total).not.toHaveText(without!);
  await settings.getByTestId('memory-estimate').screenshot({ path: testInfo.outputPath('recompute-auto-on.png') });

  // The setting overrides the decision both ways.
  await settings.getByTestId('setting-recompute').selectOption('off');
  await expect(line).toHaveAttribute('data-on', 'false');
  await expect(line).toContainText('off (your setting)');
  await expect(line).toContainText('still more than your memory budget of 4 MiB');
  await expect(total).toHaveText(without!);
  await settings.getByTestId('setting-recompute').selectOption('on');
  await expect(line).toContainText('on (your setting)');
  expect(errors).toEqual([]);
});

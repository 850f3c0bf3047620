import { expect, test } from '@playwright/test';
import { collectErrors, openApp } from './helpers';

const SYSTEM =
  'Context:\n[1] (plans.md) The Team plan costs 10 euros per seat and month.\n[2] (faq.md) Refunds are issued within five working days.';
const row = (answer: string) =>
  JSON.stringify({
    messages: [
      { role: 'system', content: SYSTEM },
      { role: 'user', content: 'How fast are refunds?' },
      { role: 'assistant', content: answer },
    ],
  });

test('the citation enhancement is previewed per row and applied as a new dataset, the original kept', async ({ page }) => {
  const errors = collectErrors(page);
  await openApp(page);
  await page.getByTestId('step-data').click();
  const lines = [
    row('Refunds are issued within five working days.'),
    row('Refunds are issued within five working days [2].'),
    row('<img src=x onerror="window.pwned=1"> I could not find that.'),
  ];
  await page.getByTestId('dataset-file-train').setInputFiles({
    name: 'rag_rows.jsonl',
    mimeType: 'application/jsonl',
    buffer: Buffer.from(`${lines.join('\n')}\n`),
  });
  await page.getByTestId('import-confirm').click();
  await expect(page.getByTestId('dataset-item')).toHaveCount(1);

  await page.getByTestId('enhance').locator('summary').click();
  await page.getByTestId('enhance-preview').click();
  const summary = page.getByTestId('enhance-summary');
  await expect(summary).toHaveAttribute('data-rows-changed', '1');
  await expect(summary).toHaveAttribute('data-citations-added', '1');
  await expect(summary).toContainText('1 row of 3 would change');
  const change = page.getByTestId('enhance-row').getByTestId('enhance-change');
  await expect(page.getByTestId('enhance-row')).toHaveAttribute('data-row', '0');
  await expect(change).toHaveAttribute('data-source', '2');
  await expect(change).toContainText('Refunds are issued within five working days. + [2] · overlap 1.00 with source 2');
  // Nothing is stored until applied.
  await expect(page.getByTestId('dataset-item')).toHaveCount(1);

  await page.getByTestId('enhance-apply').click();
  await expect(page.getByTestId('enhance-notice')).toContainText('"rag rows" is unchanged');
  await expect(page.getByTestId('dataset-item')).toHaveCount(2);
  await expect(page.locator('[data-testid="dataset-item"][data-name="rag rows (citations added)"]')).toBeVisible();
  await expect(page.locator('[data-testid="dataset-item"][data-name="rag rows"]')).toBeVisible();
  // The new dataset is the training choice, and nothing in it is left to cite.
  await page.getByTestId('enhance-preview').click();
  await expect(page.getByTestId('enhance-summary')).toHaveAttribute('data-rows-changed', '0');
  await expect(page.getByTestId('enhance-apply')).toBeDisabled();
  expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
  expect(errors).toEqual([]);
});

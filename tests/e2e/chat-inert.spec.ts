import { expect, test } from '@playwright/test';
import { collectErrors, loadLocalModel, openApp } from './helpers';

declare global {
  interface Window {
    pwned?: number;
  }
}

const HOSTILE_NAME = '<img src=x onerror=window.pwned=1>.md';
const HOSTILE_TEXT = '# Refunds\n\nRefunds take five days. <img src=x onerror="window.pwned=2"> <script>window.pwned=3</script>';
const HOSTILE_QUESTION = '<b onmouseover="window.pwned=4">How long do refunds take?</b>';
const HOSTILE_REPLY =
  '<img src=x onerror="window.pwned=5"><script>window.pwned=6</script> Five days [1]. ' +
  '<a href="javascript:window.pwned=7">details</a> [more](javascript:window.pwned=8)';

test('document names and text, messages and replies render as inert text; PDF is refused with the reason', async ({ page }) => {
  test.setTimeout(5 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);
  await page.getByTestId('step-chat').click();
  const chat = page.locator('[data-step="chat"]');

  await page.getByTestId('document-file').setInputFiles([
    { name: 'manual.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.7\n') },
    { name: HOSTILE_NAME, mimeType: 'text/markdown', buffer: Buffer.from(HOSTILE_TEXT) },
  ]);
  await expect(page.getByTestId('documents-error')).toContainText(
    '"manual.pdf": add .txt, .md or .html documents (got .pdf). PDF is not read here',
  );
  await expect(page.getByTestId('document-item')).toHaveCount(1);
  await expect(page.getByTestId('document-item')).toHaveAttribute('data-name', HOSTILE_NAME);
  await expect(page.getByTestId('document-item')).toContainText(HOSTILE_NAME);

  await page.getByTestId('chat-temperature').fill('0');
  await page.getByTestId('chat-max-tokens').fill('2');
  await page.getByTestId('chat-input').fill(HOSTILE_QUESTION);
  await page.getByTestId('chat-send').click();
  const turn = page.getByTestId('chat-turn');
  await expect(turn.getByTestId('rate-up')).toBeVisible();
  await expect(turn.getByTestId('chat-user')).toHaveText(HOSTILE_QUESTION);
  await expect(turn.getByTestId('chat-source')).toContainText('<img src=x onerror="window.pwned=2">');
  await expect(turn.getByTestId('chat-source')).toContainText(HOSTILE_NAME);
  await turn.getByTestId('chat-prompt-view').locator('summary').click();
  await expect(turn.getByTestId('chat-prompt')).toContainText('<script>window.pwned=3</script>');

  await turn.getByTestId('correct-reply').click();
  await turn.getByTestId('correction-input').fill(HOSTILE_REPLY);
  await turn.getByTestId('correction-save').click();
  await expect(turn.getByTestId('chat-reply-correction')).toHaveText(HOSTILE_REPLY);
  await expect(page.getByTestId('chat-log-item').getByTestId('chat-log-open')).toHaveText(HOSTILE_QUESTION);
  await page.getByTestId('chat-title').hover();
  await turn.getByTestId('chat-user').hover();

  // Nothing of it became markup: no element from the content, no handler ran.
  await expect(chat.locator('img, script:not([src]), b, a[href^="javascript:" i]')).toHaveCount(0);
  expect(await page.evaluate(() => window.pwned)).toBeUndefined();
  expect(errors).toEqual([]);
});

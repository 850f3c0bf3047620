import { expect, test } from '@playwright/test';
import { collectErrors, loadLocalModel, openApp } from './helpers';
import { busiestPageTask, expectResponsive, watchMainThread } from './main-thread';

test('chat streams tokens as they come, stops within one token, and never blocks the page', async ({ page, browser }, testInfo) => {
  test.setTimeout(10 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);
  await page.getByTestId('step-chat').click();
  await page.getByTestId('chat-use-documents').uncheck();
  await page.getByTestId('chat-temperature').fill('0');
  await page.getByTestId('chat-max-tokens').fill('400');
  await page.getByTestId('chat-input').fill('Once upon a time');

  // Every main-thread task from here on: long tasks (Long Tasks API) and a trace with each task's CPU time; the bar is 100 ms.
  const stopWatching = await watchMainThread(page, browser);
  await page.getByTestId('chat-send').click();

  const reply = page.getByTestId('chat-reply');
  // Partial text while the reply is still streaming: tokens appear before generation ends.
  await expect(reply).toHaveAttribute('data-tokens', /^([3-9]|\d\d+)$/);
  const partial = await page.evaluate(() => {
    const box = document.querySelector<HTMLElement>('[data-testid="chat-reply"]')!;
    return {
      state: box.dataset.state,
      tokens: Number(box.dataset.tokens),
      text: box.querySelector('[data-testid="chat-reply-text"]')!.textContent,
    };
  });
  expect(partial.state).toBe('streaming');
  expect(partial.text?.length).toBeGreaterThan(0);

  // Read the count and press stop in one task, so no token can slip in between.
  const atStop = await page.evaluate(() => {
    const box = document.querySelector<HTMLElement>('[data-testid="chat-reply"]')!;
    const tokens = Number(box.dataset.tokens);
    document.querySelector<HTMLButtonElement>('[data-testid="chat-stop"]')!.click();
    return tokens;
  });
  await expect(reply).toHaveAttribute('data-state', 'stopped');
  const final = Number(await reply.getAttribute('data-tokens'));
  testInfo.annotations.push({ type: 'tokens', description: `${partial.tokens} seen streaming, ${atStop} at stop, ${final} kept` });
  expect(final).toBeGreaterThanOrEqual(atStop);
  expect(final).toBeLessThanOrEqual(atStop + 1);
  expect(final).toBeLessThan(400);
  await expect(reply.getByTestId('chat-reply-text')).toHaveText(/^(?!\s*$)/);
  await expect(reply).toContainText('stopped');

  const report = await stopWatching();
  const { longTasks } = report;
  testInfo.annotations.push({
    type: 'long tasks',
    description:
      `${longTasks.length} over 50 ms (${longTasks.map((d) => d.toFixed(0)).join(', ') || 'none'}); ` +
      `${report.tasks.length} main-thread tasks in the trace, the page's busiest ${busiestPageTask(report).toFixed(1)} ms of CPU`,
  });
  expectResponsive(report);
  expect(errors).toEqual([]);
});

import { expect, test } from '@playwright/test';
import { collectErrors, loadLocalModel, openApp } from './helpers';

interface TraceEvent {
  name: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  /** Thread (CPU) time of the event, where wall time `dur` also counts the time the thread waited to be scheduled. */
  tdur?: number;
  args?: { name?: string; data?: { frames?: { processId: number }[] } };
}

/** The page's main-thread tasks in a Chrome trace: wall and CPU milliseconds of each. */
function mainThreadTasks(events: TraceEvent[]): { wallMs: number; cpuMs: number }[] {
  const pid = events.find((e) => e.name === 'TracingStartedInBrowser')?.args?.data?.frames?.[0]?.processId;
  const main = events.find((e) => e.pid === pid && e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  if (!main) throw new Error('the trace has no main thread for the page');
  return events
    .filter((e) => e.pid === main.pid && e.tid === main.tid && e.name === 'RunTask' && e.dur !== undefined)
    .map((e) => ({ wallMs: e.dur! / 1000, cpuMs: (e.tdur ?? e.dur!) / 1000 }));
}

declare global {
  interface Window {
    longTasks?: number[];
  }
}

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

  // Every main-thread task over 50 ms from here on (Long Tasks API); the bar is 100 ms.
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.longTasks!.push(entry.duration);
    }).observe({ type: 'longtask' });
  });
  // The same window in a trace, which also has each task's CPU time.
  await browser.startTracing(page, { categories: ['toplevel', 'disabled-by-default-devtools.timeline'] });
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

  const longTasks = await page.evaluate(() => window.longTasks!);
  const trace = JSON.parse((await browser.stopTracing()).toString()) as { traceEvents: TraceEvent[] };
  const tasks = mainThreadTasks(trace.traceEvents);
  const busiest = Math.max(...tasks.map((t) => t.cpuMs));
  testInfo.annotations.push({
    type: 'long tasks',
    description:
      `${longTasks.length} over 50 ms (${longTasks.map((d) => d.toFixed(0)).join(', ') || 'none'}); ` +
      `${tasks.length} main-thread tasks in the trace, the busiest ${busiest.toFixed(1)} ms of CPU`,
  });
  // No task keeps the main thread busy for 100 ms.
  expect(busiest).toBeLessThanOrEqual(100);
  // A long task the observer reports over 100 ms must be one where the thread waited for a CPU (the
  // shared machine is overloaded), not one where the page worked: the trace shows the same task's CPU time.
  for (const duration of longTasks.filter((d) => d > 100)) {
    const task = tasks.find((t) => Math.abs(t.wallMs - duration) < 3);
    expect(task, `the trace has the ${duration.toFixed(0)} ms long task`).toBeDefined();
    expect(task!.cpuMs).toBeLessThanOrEqual(100);
  }
  expect(errors).toEqual([]);
});

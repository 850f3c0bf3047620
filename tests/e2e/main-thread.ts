/**
 * Measuring what the page's main thread and the engine's worker do, for the specs that bound them:
 * long tasks from the Long Tasks API checked against their CPU time in a Chrome trace (on a shared,
 * overloaded machine a task's wall time also counts the time its thread waited for a core, as in
 * chat-streaming.spec.ts), and the worker's JS heap through the DevTools protocol.
 */
import { type Browser, type CDPSession, expect, type Page } from '@playwright/test';

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

declare global {
  interface Window {
    longTasks?: number[];
  }
}

/** Starts recording main-thread long tasks (over 50 ms) and a trace of every task's wall and CPU time. */
export async function watchMainThread(page: Page, browser: Browser): Promise<() => Promise<MainThreadReport>> {
  await page.evaluate(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.longTasks!.push(entry.duration);
    }).observe({ type: 'longtask' });
  });
  await browser.startTracing(page, { categories: ['toplevel', 'disabled-by-default-devtools.timeline'] });
  return async () => {
    const longTasks = await page.evaluate(() => window.longTasks!);
    const trace = JSON.parse((await browser.stopTracing()).toString()) as { traceEvents: TraceEvent[] };
    return { longTasks, tasks: mainThreadTasks(trace.traceEvents) };
  };
}

export interface MainThreadReport {
  /** Wall milliseconds of each long task the page saw. */
  longTasks: number[];
  /**
   * Every main-thread task in the trace. `harness`: the task is a DevTools evaluation, the test's own
   * Playwright call (a locator query, an attribute read), not work of the page.
   */
  tasks: { wallMs: number; cpuMs: number; harness: boolean }[];
}

/** The busiest task of the page itself (not the test's own evaluations), in milliseconds of CPU. */
export function busiestPageTask(report: MainThreadReport): number {
  return Math.max(0, ...report.tasks.filter((t) => !t.harness).map((t) => t.cpuMs));
}

/**
 * No task of the page kept its main thread busy for 100 ms. A long task the observer reports over
 * 100 ms must be one where the thread waited for a CPU (a shared, overloaded machine), not one where
 * the page worked: the trace shows the same task's CPU time.
 */
export function expectResponsive(report: MainThreadReport): void {
  expect(busiestPageTask(report)).toBeLessThanOrEqual(100);
  for (const duration of report.longTasks.filter((d) => d > 100)) {
    const task = report.tasks.find((t) => Math.abs(t.wallMs - duration) < 3);
    expect(task, `the trace has the ${duration.toFixed(0)} ms long task`).toBeDefined();
    if (!task!.harness) expect(task!.cpuMs).toBeLessThanOrEqual(100);
  }
}

function mainThreadTasks(events: TraceEvent[]): MainThreadReport['tasks'] {
  const pid = events.find((e) => e.name === 'TracingStartedInBrowser')?.args?.data?.frames?.[0]?.processId;
  const main = events.find((e) => e.pid === pid && e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  if (!main) throw new Error('the trace has no main thread for the page');
  const thread = events.filter((e) => e.pid === main.pid && e.tid === main.tid && e.dur !== undefined);
  // DevTools evaluations arrive as a mojo message whose task is one EvaluateScript; the page's own
  // scripts run as event handlers, timers and messages instead.
  const evaluations = thread.filter((e) => e.name === 'EvaluateScript');
  return thread
    .filter((e) => e.name === 'RunTask')
    .map((e) => ({
      wallMs: e.dur! / 1000,
      cpuMs: (e.tdur ?? e.dur!) / 1000,
      harness: evaluations.some((x) => x.ts >= e.ts && x.ts + x.dur! <= e.ts + e.dur! && x.dur! >= 0.9 * e.dur!),
    }));
}

/** The page's dedicated worker (the engine) through the browser's DevTools session: its JS heap, after a collection when asked. */
export async function workerHeap(
  browser: Browser,
): Promise<{ usedBytes: (collect?: boolean) => Promise<number>; close: () => Promise<void> }> {
  const cdp: CDPSession = await browser.newBrowserCDPSession();
  const { targetInfos } = (await cdp.send('Target.getTargets')) as { targetInfos: { targetId: string; type: string }[] };
  const worker = targetInfos.find((t) => t.type === 'worker');
  if (!worker) throw new Error('the page has no dedicated worker');
  const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId: worker.targetId, flatten: false })) as { sessionId: string };
  let id = 0;
  const pending = new Map<number, (result: Record<string, number>) => void>();
  cdp.on('Target.receivedMessageFromTarget', (event: { message: string }) => {
    const message = JSON.parse(event.message) as { id?: number; result?: Record<string, number> };
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? {});
  });
  const call = (method: string) =>
    new Promise<Record<string, number>>((resolve) => {
      id += 1;
      pending.set(id, resolve);
      void cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params: {} }) });
    });
  return {
    usedBytes: async (collect = false) => {
      if (collect) await call('HeapProfiler.collectGarbage');
      return (await call('Runtime.getHeapUsage')).usedSize;
    },
    close: () => cdp.detach(),
  };
}

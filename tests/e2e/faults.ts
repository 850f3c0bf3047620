/**
 * Helpers of the fault specs: the e2e build's hooks (src/testing/hooks.ts) through the engine
 * handle the page exposes there, a renderer crash through the DevTools protocol, and IndexedDB
 * read or changed directly, bypassing webtune's storage layer.
 */
import path from 'node:path';
import { expect, type Page } from '@playwright/test';
import { zipSync } from 'fflate';
import { readFileSync } from 'node:fs';
import type { HookAction, HookPoint } from '../../src/testing/hooks';
import type { TestHooksApi } from '../../src/testing/worker-api';
import { GOLDEN_DIR } from './helpers';

declare global {
  interface Window {
    __webtuneTest?: { engine: TestHooksApi & Record<string, (...args: unknown[]) => Promise<unknown>> };
  }
}

/** Arms a hook point in the page's engine; `reached` resolves once the engine hits it. */
export async function armHook(page: Page, point: HookPoint, at: number, action: HookAction): Promise<{ reached: Promise<void> }> {
  await page.evaluate(([p, a, act]) => window.__webtuneTest!.engine.testArm(p, a, act), [point, at, action] as const);
  // Not awaited here: the page may be crashed while the engine stands at the point.
  const reached = page.evaluate((p) => window.__webtuneTest!.engine.testReached(p), point);
  return { reached };
}

/** Crashes the page's renderer (its worker and any open transaction go with it), as a browser crash would. */
export async function crashPage(page: Page): Promise<void> {
  const session = await page.context().newCDPSession(page);
  const crashed = page.waitForEvent('crash');
  // Never answered: the renderer dies first (the call only fails once the page is closed).
  void session.send('Page.crash').catch(() => undefined);
  await crashed;
}

/** Every record of an object store of the page's webtune database, read directly. */
export async function storeRecords<T = unknown>(page: Page, store: string): Promise<T[]> {
  return page.evaluate(
    (name) =>
      new Promise<T[]>((resolve, reject) => {
        const open = indexedDB.open('webtune');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const request = db.transaction(name).objectStore(name).getAll();
          request.onsuccess = () => {
            db.close();
            resolve(request.result as T[]);
          };
          request.onerror = () => reject(request.error);
        };
      }),
    store,
  );
}

/** Keys of an object store, read directly. */
export async function storeKeys(page: Page, store: string): Promise<unknown[]> {
  return page.evaluate(
    (name) =>
      new Promise<unknown[]>((resolve, reject) => {
        const open = indexedDB.open('webtune');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const request = db.transaction(name).objectStore(name).getAllKeys();
          request.onsuccess = () => {
            db.close();
            resolve(request.result);
          };
        };
      }),
    store,
  );
}

/**
 * Flips one bit of a stored tensor, as damage on disk would: `field` names the Float32Array
 * (`params`, `m`, `v` of a checkpoint; `tensors.<i>.data` of an adapter).
 */
export async function flipStoredBit(page: Page, store: string, key: string | (string | number)[], field: string): Promise<void> {
  await page.evaluate(
    ([name, k, f]) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('webtune');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          const tx = db.transaction(name, 'readwrite');
          const objects = tx.objectStore(name);
          const get = objects.get(k);
          get.onsuccess = () => {
            const record = get.result;
            let array = record;
            for (const part of f.split('.')) array = array[part];
            new Uint8Array(array.buffer, array.byteOffset, array.byteLength)[1] ^= 0x20;
            objects.put(record);
          };
          tx.oncomplete = () => {
            db.close();
            resolve();
          };
          tx.onerror = () => reject(tx.error);
        };
      }),
    [store, key, field] as [string, string | (string | number)[], string],
  );
}

/** The golden case's init adapter (A and B non-zero, written by PyTorch) as a zipped PEFT folder. */
export function goldenPeftZip(): Uint8Array {
  const config = {
    peft_type: 'LORA',
    base_model_name_or_path: 'stories260K',
    r: 4,
    lora_alpha: 8,
    target_modules: ['q_proj', 'k_proj', 'v_proj'],
  };
  return zipSync({
    'adapter_config.json': new TextEncoder().encode(JSON.stringify(config)),
    'adapter_model.safetensors': new Uint8Array(readFileSync(path.join(GOLDEN_DIR, 'adapter_init.safetensors'))),
  });
}

/** Waits until the training step shows `state` (data-state of the run status pill). */
export async function expectRunState(page: Page, state: RegExp | string, timeout = 20 * 60_000): Promise<void> {
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', state, { timeout });
}

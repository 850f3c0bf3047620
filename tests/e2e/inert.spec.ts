import { expect, type Page, test } from '@playwright/test';
import { zipSync } from 'fflate';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { collectErrors, GOLDEN_DIR, loadLocalModel, openApp, setSettings } from './helpers';

declare global {
  interface Window {
    __pwned?: number;
    violations?: string[];
  }
}

/** Markup that would run if any of it reached the page as HTML; each sets the canary differently. */
const IMG = '<img src=x onerror="window.__pwned=1">';
const SCRIPT = '<script>window.__pwned=2</script>';
const LINK = '<a href="javascript:window.__pwned=3">more</a>';
const MARKDOWN = '[click](javascript:window.__pwned=4)';
const NAME = `<img src=x onerror=window.__pwned=5>`;

const context = (facts: string[]) => `Context:\n${facts.map((f, i) => `[${i + 1}] (notes.md) ${f}`).join('\n')}`;
const ragRow = (fact: string, question: string, answer: string) =>
  JSON.stringify({
    messages: [
      { role: 'system', content: context([fact, `The cave is warm. ${IMG}`]) },
      { role: 'user', content: `${question} ${SCRIPT}` },
      { role: 'assistant', content: answer },
    ],
  });

/**
 * RAG rows (an answer that repeats its source without citing it, for the enhancement), a row too short
 * for the preset, a text row, bad lines.
 */
const HOSTILE_JSONL = [
  ragRow('Zog lives in a big cave on the hill.', 'Where does Zog live?', `Zog lives in a big cave on the hill. ${LINK} ${MARKDOWN}`),
  ragRow('Zog eats apples every morning.', 'What does Zog eat?', `Zog eats apples every morning [1], and he shares them. ${IMG}`),
  ragRow('Zog can fly over the sea.', 'Can Zog fly?', `Yes: Zog can fly over the sea, far and fast. ${SCRIPT}`),
  ragRow('Zog has a friend called Lily.', 'Who is his friend?', IMG),
  JSON.stringify({ text: `Once upon a time ${IMG} ${SCRIPT} ${LINK} ${MARKDOWN}` }),
  `${IMG} this line is not JSON`,
  JSON.stringify({ [SCRIPT]: 1, [IMG]: 2 }),
].join('\n');

/** Every place the content could have become markup: elements it would have made, handlers, javascript: links. */
async function expectInert(page: Page): Promise<void> {
  await expect(page.locator('img[src="x"], body script:not([src]), a[href^="javascript:" i], [onerror], [onmouseover]')).toHaveCount(0);
  expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
  expect(await page.evaluate(() => window.violations)).toEqual([]);
}

test('dataset text, file names, run and adapter names, share links and model output render as inert text in every step', async ({
  page,
}) => {
  test.setTimeout(15 * 60_000);
  const errors = collectErrors(page);
  await page.addInitScript(() => {
    window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.violations!.push(`${e.effectiveDirective} ${e.blockedURI}`));
  });

  await test.step('a share link that names hostile things: refused with the reason, or listed as text', async () => {
    await page.goto(`/#webtune=1&model=hub:${encodeURIComponent(NAME)}`);
    await expect(page.getByTestId('share-confirm')).toContainText(NAME);
    await expectInert(page);
    await page.route('https://data.example.org/**', (route) =>
      route.fulfill({ status: 200, body: '', headers: { 'access-control-allow-origin': '*', 'content-length': '42' } }),
    );
    await page.goto(`/#webtune=1&train=url:https://data.example.org/${encodeURIComponent(`${SCRIPT}.jsonl`)}`);
    await expect(page.getByTestId('share-item')).toContainText('data.example.org/');
    await expect(page.getByTestId('share-item')).toContainText('42 B');
    await expectInert(page);
    await page.getByTestId('share-cancel').click();
  });

  await openApp(page);
  await loadLocalModel(page);

  await test.step('the data step: preview, its errors, the analysis, the stored list and the enhancement', async () => {
    await page.getByTestId('step-data').click();
    await page
      .getByTestId('dataset-file-train')
      .setInputFiles({ name: `${NAME}.jsonl`, mimeType: 'application/jsonl', buffer: Buffer.from(HOSTILE_JSONL) });
    const preview = page.getByTestId('import-preview');
    await expect(page.getByTestId('preview-valid')).toHaveAttribute('data-count', '5');
    await expect(preview).toContainText(`${NAME}.jsonl`);
    // The name offered is the file's, underscores and dashes made spaces; the hostile name is then typed in whole.
    await expect(page.getByTestId('preview-name')).toHaveValue(NAME.replace(/[_-]+/g, ' '));
    await page.getByTestId('preview-name').fill(NAME);
    await expect(preview.locator('.sample')).toContainText(SCRIPT);
    const errorRows = page.getByTestId('import-error');
    await expect(errorRows).toHaveCount(2);
    await expect(errorRows.nth(0)).toContainText(IMG);
    await expect(errorRows.nth(1)).toContainText(`"${SCRIPT}"`);
    await expectInert(page);
    await page.getByTestId('import-confirm').click();
    await expect(page.getByTestId('dataset-item')).toContainText(`${NAME}.jsonl`);
    await expect(page.getByTestId('train-dataset-select').locator('option:checked')).toHaveText(`${NAME} (5 rows)`);
    const analysis = page.getByTestId('train-analysis');
    await expect(analysis.getByTestId('analysis-report')).toHaveAttribute('data-conversations', '5');
    await analysis.getByTestId('conversation-list').locator('summary').first().click();
    await expectInert(page);
    await page.getByTestId('enhance').locator('summary').click();
    await page.getByTestId('enhance-preview').click();
    await expect(page.getByTestId('enhance-summary')).toBeVisible();
    await expectInert(page);
  });

  await test.step('settings: the preset and its filter report', async () => {
    await page.getByTestId('step-settings').click();
    await page.getByTestId('preset-select').selectOption('rag_enhanced');
    await page.getByTestId('preset-apply').click();
    await expect(page.getByTestId('removed-row').first()).toContainText(IMG);
    await setSettings(page, { numbers: { batchSize: 4, epochs: 1, maxLength: 512, evalFraction: 0, checkpointEvery: 0, warmupSteps: 0 } });
    await page.getByTestId('run-name').fill(NAME);
    await expectInert(page);
  });

  await test.step('training: the run name in the step and in its adapter', async () => {
    await page.getByTestId('start-training').click();
    await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'completed', { timeout: 10 * 60_000 });
    await expect(page.locator('[data-step="training"] h2')).toHaveText(NAME);
    await expectInert(page);
  });

  await test.step('adapters: a hostile zip name and base model in the import notice and the list', async () => {
    await page.getByTestId('step-adapters').click();
    const config = {
      peft_type: 'LORA',
      base_model_name_or_path: SCRIPT,
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj', 'k_proj', 'v_proj'],
    };
    const zip = zipSync({
      'adapter_config.json': new TextEncoder().encode(JSON.stringify(config)),
      'adapter_model.safetensors': new Uint8Array(readFileSync(path.join(GOLDEN_DIR, 'adapter_init.safetensors'))),
    });
    await page
      .getByTestId('adapter-import-files')
      .setInputFiles({ name: `${IMG}.zip`, mimeType: 'application/zip', buffer: Buffer.from(zip) });
    await expect(page.getByTestId('adapter-import-notice')).toContainText(`Imported "${IMG}"`);
    await expect(page.getByTestId('adapter-name')).toHaveText([IMG, NAME]);
    await expect(page.locator('[data-step="adapters"]')).toContainText(SCRIPT);
    await expect(page.getByTestId('export-adapter').locator('option')).toHaveText([IMG, NAME]);
    await expectInert(page);
  });

  await test.step('compare and evaluate: model output beside the hostile names and prompt', async () => {
    await page.getByTestId('step-compare').click();
    // The option reads "<name> (eval <loss>)"; only the trained adapter is for this base model.
    const adapted = await page.getByTestId('compare-adapter').locator('option', { hasText: NAME }).getAttribute('value');
    await page.getByTestId('compare-adapter').selectOption(adapted!);
    await page.getByTestId('compare-prompt').fill(`${SCRIPT} Once upon a time`);
    await page.getByTestId('compare-max-tokens').fill('4');
    await page.getByTestId('compare-temperature').fill('0');
    await page.getByTestId('compare-generate').click();
    await expect(page.getByTestId('compare-adapted')).toHaveAttribute('data-state', 'done');
    await expectInert(page);
    await page.getByTestId('step-evaluate').click();
    await page.getByTestId('eval-dataset').selectOption({ label: `${NAME} (5 rows)` });
    const trained = await page.getByTestId('eval-adapter').locator('option', { hasText: NAME }).getAttribute('value');
    await page.getByTestId('eval-adapter').selectOption(trained!);
    await page.getByTestId('eval-max-tokens').fill('2');
    await page.getByTestId('eval-run').click();
    await expect(page.getByTestId('eval-example')).toHaveCount(5, { timeout: 10 * 60_000 });
    await expectInert(page);
  });

  expect(errors).toEqual([]);
});

import { expect, type Page, test } from '@playwright/test';
import { formatContext } from '../../src/rag/context';
import { splitDocument } from '../../src/rag/passages';
import { PassageIndex } from '../../src/rag/search-index';
import { collectErrors, loadLocalModel, openApp, setSettings, startTraining } from './helpers';

const DOCUMENTS = [
  {
    name: 'refunds.md',
    text: '# Refunds\n\nRefunds are issued within five working days. Annual plans can be refunded in the first month.',
  },
  { name: 'plans.txt', text: 'The Team plan costs ten euros per seat and month. The Free plan has three projects.' },
];
const QUESTIONS = ['How long do refunds take?', 'What does the Team plan cost?'];
const CORRECTION = 'The Team plan costs ten euros per seat and month [1].';
const TOP_K = 2;

/** The system message the engine must build: the same library, the same documents, the same query. */
function expectedSystem(question: string): string {
  const index = PassageIndex.create();
  for (const d of DOCUMENTS) index.addDocument(splitDocument(d.name, d.text));
  return formatContext(index.search(question, TOP_K).map((hit) => hit.passage))!.system;
}

async function ask(page: Page, question: string, turn: number): Promise<void> {
  await page.getByTestId('chat-input').fill(question);
  await page.getByTestId('chat-send').click();
  await expect(page.getByTestId('chat-turn')).toHaveCount(turn + 1);
  // Drawn again from the stored record once the turn is saved.
  await expect(page.getByTestId('chat-turn').nth(turn).getByTestId('rate-up')).toBeVisible();
}

test('chat over two documents: sources in the prompt, a rating and a correction, rows that train, all kept across a reload', async ({
  page,
}, testInfo) => {
  test.setTimeout(20 * 60_000);
  const errors = collectErrors(page);
  await openApp(page);
  await loadLocalModel(page);

  await page.getByTestId('step-chat').click();
  await page
    .getByTestId('document-file')
    .setInputFiles(DOCUMENTS.map((d) => ({ name: d.name, mimeType: 'text/plain', buffer: Buffer.from(d.text) })));
  await expect(page.getByTestId('document-item')).toHaveCount(2);
  await expect(page.getByTestId('document-item').nth(0)).toHaveAttribute('data-name', 'refunds.md');

  await page.getByTestId('chat-temperature').fill('0');
  await page.getByTestId('chat-max-tokens').fill('12');
  await page.getByTestId('chat-top-k').fill(String(TOP_K));
  for (const [i, question] of QUESTIONS.entries()) await ask(page, question, i);

  const turns = page.getByTestId('chat-turn');
  for (const [i, question] of QUESTIONS.entries()) {
    const turn = turns.nth(i);
    await expect(turn.getByTestId('chat-user')).toHaveText(question);
    // The rendered prompt: the system message holds the top passages as numbered sources, in the Context:/[n] format.
    const system = expectedSystem(question);
    await turn.getByTestId('chat-prompt-view').locator('summary').click();
    await expect(turn.getByTestId('chat-system')).toHaveText(system);
    expect(await turn.getByTestId('chat-prompt').textContent()).toContain(`System: ${system}\n\nUser: `);
    expect(await turn.getByTestId('chat-prompt').textContent()).toMatch(new RegExp(`User: ${question.replace('?', '\\?')}\n\nAssistant:$`));
    await expect(turn.getByTestId('chat-source').first()).toHaveAttribute('data-document', DOCUMENTS[i].name);
    await expect(turn.getByTestId('chat-citations')).toContainText('Sources given: [1]');
  }
  await expect(turns.nth(1).getByTestId('chat-prompt')).toContainText(`User: ${QUESTIONS[0]}`);
  await page.screenshot({ path: testInfo.outputPath('chat.png'), fullPage: true });

  // Rate the first reply up, correct the second.
  const first = turns.nth(0).getByTestId('chat-reply');
  await first.getByTestId('rate-up').click();
  await expect(turns.nth(0).getByTestId('chat-reply')).toHaveAttribute('data-rating', 'up');
  const second = turns.nth(1).getByTestId('chat-reply');
  const generated = await second.getByTestId('chat-reply-text').textContent();
  await second.getByTestId('correct-reply').click();
  await second.getByTestId('correction-input').fill(CORRECTION);
  await second.getByTestId('correction-save').click();
  await expect(turns.nth(1).getByTestId('chat-reply')).toHaveAttribute('data-corrected', 'true');
  await expect(turns.nth(1).getByTestId('chat-reply-correction')).toHaveText(CORRECTION);
  await expect(turns.nth(1).getByTestId('chat-reply-text')).toHaveText(generated ?? '');
  await expect(turns.nth(1).getByTestId('chat-citations')).toHaveAttribute('data-cited', '1');

  // Both into a new dataset, which the analysis labels rag_enhanced.
  const item = page.getByTestId('chat-log-item');
  await expect(item).toHaveCount(1);
  await expect(item).toHaveAttribute('data-rated-up', '1');
  await expect(item).toHaveAttribute('data-corrected', '1');
  await page.getByTestId('chat-dataset-name').fill('support chat');
  await page.getByTestId('add-rated-to-dataset').click();
  await expect(page.getByTestId('chat-log-notice')).toContainText('Stored 2 rows as the dataset "support chat"');
  await page.getByTestId('step-data').click();
  await expect(page.getByTestId('train-dataset-select')).toHaveValue(/.+/);
  const analysis = page.getByTestId('train-analysis');
  await expect(analysis.locator('[data-testid="task-row"][data-task="rag_enhanced"]')).toHaveAttribute('data-count', '2');
  await expect(analysis.getByTestId('rag-conversations')).toHaveAttribute('data-count', '2');

  // A few training steps on it: 2 rows, 2 per step, 2 epochs.
  await setSettings(page, { numbers: { epochs: 2, batchSize: 2, gradAccum: 1, evalFraction: 0, maxLength: 256, r: 4, alpha: 8 } });
  await expect(page.getByTestId('run-plan')).toContainText('2 training rows');
  await expect(page.getByTestId('run-plan')).toContainText('2 in all');
  const started = Date.now();
  await startTraining(page, 'chat adapter');
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-state', 'completed', { timeout: 15 * 60_000 });
  testInfo.annotations.push({ type: 'training time', description: `${((Date.now() - started) / 1000).toFixed(0)} s for 2 steps` });
  await expect(page.getByTestId('run-step')).toHaveText('2 / 2');

  // After a reload: the conversation, its rating and its correction, and the documents.
  await page.reload();
  await openApp(page);
  await page.getByTestId('step-chat').click();
  await expect(page.getByTestId('document-item')).toHaveCount(2);
  await expect(item).toHaveCount(1);
  await expect(item).toHaveAttribute('data-rated-up', '1');
  await expect(item).toHaveAttribute('data-corrected', '1');
  await item.getByTestId('chat-log-open').click();
  await expect(turns).toHaveCount(2);
  await expect(turns.nth(0).getByTestId('chat-reply')).toHaveAttribute('data-rating', 'up');
  await expect(turns.nth(1).getByTestId('chat-reply-correction')).toHaveText(CORRECTION);
  await expect(turns.nth(1).getByTestId('chat-reply-text')).toHaveText(generated ?? '');
  await expect(turns.nth(0).getByTestId('chat-source').first()).toHaveAttribute('data-document', 'refunds.md');
  // The filters find it by what it holds.
  await page.getByTestId('chat-log-corrected').selectOption('no');
  await expect(item).toHaveCount(0);
  await page.getByTestId('chat-log-corrected').selectOption('yes');
  await page.getByTestId('chat-log-search').fill('team plan');
  await expect(item).toHaveCount(1);
  await page.screenshot({ path: testInfo.outputPath('after-reload.png'), fullPage: true });
  expect(errors).toEqual([]);
});

import { writeFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { collectErrors, loadLocalModel, openApp, setSettings } from './helpers';

const line = (...turns: [string, string][]) => JSON.stringify({ messages: turns.map(([role, content]) => ({ role, content })) });

/** Greetings, ML definitions and grounded answers, 12 : 10 : 3, which the analysis trains in stages. */
function stagedChats(): string {
  const chats = ['Lily', 'Tom', 'Ben', 'Mia', 'Sam', 'Zoe', 'Max', 'Amy', 'Leo', 'Eva', 'Tim', 'Ana'].map((name) =>
    line(['user', `Hi, I am ${name}! How are you?`], ['assistant', `Hello ${name}, I am fine, thanks!`]),
  );
  const definitions = ['overfitting', 'dropout', 'a learning rate', 'an epoch', 'a tokenizer', 'an embedding', 'attention', 'a loss function', 'fine-tuning', 'a batch'].map((term) =>
    line(['user', `What is ${term} in machine learning?`], ['assistant', `In machine learning, ${term} is a training idea.`]),
  );
  const rag = ['green', 'red', 'blue'].map((colour) =>
    line(
      ['system', `Answer from the context.\n\nContext:\n[1] Zog is a ${colour} dragon.`],
      ['user', 'What colour is Zog?'],
      ['assistant', `Zog is ${colour} [1].`],
    ),
  );
  return `${[...chats, ...definitions, ...rag].join('\n')}\n`;
}

test('a dataset recommended for stages trains progressively and shows the forgetting report', async ({ page }, testInfo) => {
  test.setTimeout(20 * 60_000);
  const errors = collectErrors(page);
  const file = testInfo.outputPath('staged_chats.jsonl');
  writeFileSync(file, stagedChats());
  await openApp(page);
  await loadLocalModel(page);

  await page.getByTestId('step-data').click();
  await page.getByTestId('dataset-file-train').setInputFiles(file);
  await expect(page.getByTestId('import-preview').getByTestId('recommendation')).toHaveAttribute('data-strategy', 'progressive');
  await page.getByTestId('import-confirm').click();

  await setSettings(page, {
    targets: ['q_proj', 'v_proj'],
    numbers: { r: 4, alpha: 8, lr: 5e-3, epochs: 1, batchSize: 4, maxLength: 128, evalFraction: 0.25 },
  });
  await expect(page.getByTestId('progressive-plan')).toContainText('phase 2 on the rag_enhanced rows');
  await page.getByTestId('start-progressive').click();
  const run = page.getByTestId('progressive-run');
  await expect(run).toHaveAttribute('data-state', 'completed', { timeout: 15 * 60_000 });

  await expect(page.getByTestId('progressive-phase')).toHaveCount(2);
  await expect(page.locator('[data-testid="progressive-phase"][data-phase="2"]')).toContainText('rag_enhanced');
  const report = page.getByTestId('forgetting-report');
  const afterPhase1 = Number(await report.getByTestId('forgetting-after-phase1').getAttribute('data-value'));
  const afterPhase2 = Number(await report.getByTestId('forgetting-after-phase2').getAttribute('data-value'));
  const phase1Before = Number(
    await page.locator('[data-testid="progressive-phase"][data-phase="1"] [data-testid="phase-eval-before"]').getAttribute('data-value'),
  );
  expect(afterPhase1).toBeLessThan(phase1Before);
  expect(Number(await report.getAttribute('data-forgetting'))).toBeCloseTo(afterPhase2 - afterPhase1, 9);
  await run.screenshot({ path: testInfo.outputPath('progressive.png') });

  await page.getByTestId('step-adapters').click();
  await expect(page.getByTestId('adapter-row')).toHaveCount(1);
  expect(errors).toEqual([]);
});

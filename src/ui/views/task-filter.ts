/**
 * The task filter's switch in the quality filter: with single-task advice, training keeps only the
 * advised task's conversations (rule `other_task`). It is on by default once the advised preset is
 * applied (the preset plan's keepTask); this switch turns it off or on again.
 */
import type { App } from '../app';
import { el } from '../dom';

export function taskFilterView(app: App): HTMLElement {
  const box = el('input', { type: 'checkbox', 'data-testid': 'task-filter' });
  const label = el('span');
  const hint = el('span', { class: 'hint', 'data-testid': 'task-filter-hint' });
  const element = el('div', { class: 'field wide', hidden: true }, el('label', { class: 'check' }, box, label), hint);
  box.addEventListener('change', () => {
    const task = app.state.trainAnalysis?.recommendation.taskFilter ?? null;
    app.update({ taskFilter: box.checked ? task : null });
  });
  app.watch(
    (s) => [s.trainAnalysis?.recommendation.taskFilter ?? null, s.taskFilter, s.preset?.id ?? null],
    (task, on, presetId) => {
      element.hidden = task === null;
      if (task === null) return;
      box.checked = on !== null;
      label.textContent = `Keep only the ${task} conversations (task filter)`;
      hint.textContent =
        presetId === task
          ? `The analysis advises single-task training on ${task}, so the ${task} preset trains on its conversations only; ` +
            'turn this off to train the other conversations along under the same preset.'
          : `The analysis advises single-task training on ${task} with the ${task} preset; ` +
            'this preset trains every task unless you turn this on.';
    },
  );
  return element;
}

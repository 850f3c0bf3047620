/** The GPU memory a run needs, part by part, against the device's limits and the memory budget; shown by the model and settings steps. */
import type { MemoryEstimate } from '../../app/api';
import { el, formatBytes, formatCount } from '../dom';

export function memoryView(estimate: MemoryEstimate | null, error: string | null): HTMLElement {
  const box = el('div', { class: 'memory', 'data-testid': 'memory-estimate' });
  if (error) {
    box.append(el('p', { class: 'memory-verdict', 'data-fits': 'false' }, error));
    return box;
  }
  if (!estimate) {
    box.append(el('p', { class: 'muted' }, 'Load a model to see how much GPU memory training needs.'));
    return box;
  }
  const parts: [string, number, string][] = [
    ['Weights', estimate.weightsBytes, 'w'],
    ['Adapter + optimizer', estimate.adapterBytes + estimate.optimizerBytes, 'a'],
    ['Activations', estimate.activationBytes, 'x'],
    ['Other', estimate.otherBytes, 'o'],
  ];
  const bar = el('div', { class: 'memory-bar' });
  for (const [label, bytes, key] of parts) {
    const share = (100 * bytes) / Math.max(1, estimate.totalBytes);
    bar.append(el('span', { class: `seg seg-${key}`, style: `width:${share}%`, title: `${label}: ${formatBytes(bytes)}` }));
  }
  const legend = el('dl', { class: 'memory-legend' });
  for (const [label, bytes, key] of parts) {
    legend.append(el('dt', {}, el('span', { class: `dot seg-${key}` }), label), el('dd', {}, formatBytes(bytes)));
  }
  box.append(
    el(
      'div',
      { class: 'memory-head' },
      el('strong', {}, 'GPU memory for training'),
      el('span', { 'data-testid': 'memory-total' }, formatBytes(estimate.totalBytes)),
    ),
    bar,
    legend,
    el(
      'p',
      { class: 'memory-recompute', 'data-testid': 'memory-recompute', 'data-on': String(estimate.recompute.on) },
      recomputeText(estimate),
    ),
    el(
      'p',
      { class: 'memory-verdict', 'data-fits': String(estimate.fits) },
      estimate.fits
        ? `Fits this device's buffer limits (largest buffer ${formatBytes(estimate.largestBufferBytes)}). ` +
            `${formatCount(estimate.trainableParameters)} trainable parameters.`
        : estimate.problems.join(' '),
    ),
  );
  return box;
}

/** Whether the run recomputes activations and why, against which budget. */
function recomputeText(e: MemoryEstimate): string {
  const { mode, on, withoutBytes, withBytes } = e.recompute;
  const budget = budgetText(e);
  const state = on
    ? mode === 'auto'
      ? `Activation recomputation is on, chosen automatically: without it training needs ${formatBytes(withoutBytes)}, more than ${budget}.`
      : `Activation recomputation is on (your setting); without it training would need ${formatBytes(withoutBytes)}.`
    : mode === 'auto'
      ? `Activation recomputation is off: training fits ${budget} without it (with it: ${formatBytes(withBytes)}).`
      : `Activation recomputation is off (your setting); with it training would need ${formatBytes(withBytes)}.`;
  const over = e.overBudget ? ` That is still more than ${budget}: lower the batch size or the max length.` : '';
  return state + over;
}

function budgetText(e: MemoryEstimate): string {
  const bytes = formatBytes(e.budget.bytes);
  if (e.budget.source === 'setting') return `your memory budget of ${bytes}`;
  if (e.budget.source === 'adapter') return `the budget of ${bytes} (80% of the memory this GPU reports)`;
  return `the default budget of ${bytes} (WebGPU does not say how much memory this GPU has; set a budget in the settings)`;
}

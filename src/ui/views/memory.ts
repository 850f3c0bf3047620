/** The GPU memory a run needs, part by part, against the device's limits; shown by the model and settings steps. */
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
    ['Adapter + grads', estimate.adapterBytes, 'a'],
    ['AdamW state', estimate.optimizerBytes, 'o'],
    ['Activations', estimate.activationBytes, 'x'],
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
      { class: 'memory-verdict', 'data-fits': String(estimate.fits) },
      estimate.fits
        ? `Fits this device's buffer limits (largest buffer ${formatBytes(estimate.largestBufferBytes)}). ` +
            `${formatCount(estimate.trainableParameters)} trainable parameters. ` +
            'WebGPU does not report free GPU memory, so the total is what to compare with your GPU.'
        : estimate.problems.join(' '),
    ),
  );
  return box;
}

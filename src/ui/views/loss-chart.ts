/**
 * The training and eval loss over optimizer steps, drawn with uPlot: values under the cursor in
 * the legend, a log-scale switch, and exponential smoothing of the train loss (TensorBoard's: each
 * point is `w · previous + (1 − w) · loss`), drawn over the raw loss in a lighter line. The same
 * drawing makes the report's chart and the PNG (lossChartPng), so they show what the page shows.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { HistoryPoint } from '../../storage/db';
import { el } from '../dom';

const HEIGHT = 280;
const TRAIN = '#5b5bd6';
const EVAL = '#e07a30';

export interface ChartOptions {
  log: boolean;
  /** 0: raw; up to 0.99. */
  smoothing: number;
}

/** Exponential moving average with TensorBoard's debiasing, so the first points are not pulled towards 0. */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null) return null;
    last = last * weight + (1 - weight) * v;
    n++;
    return weight === 0 ? v : last / (1 - weight ** n);
  });
}

/** uPlot's columns: steps, raw train loss, smoothed train loss, eval loss (null where a step has none). */
function columns(history: HistoryPoint[], smoothing: number): uPlot.AlignedData {
  const byStep = new Map<number, { loss: number | null; evalLoss: number | null }>();
  for (const p of history) {
    const row = byStep.get(p.step) ?? { loss: null, evalLoss: null };
    if (p.loss !== undefined) row.loss = p.loss;
    if (p.evalLoss !== undefined) row.evalLoss = p.evalLoss;
    byStep.set(p.step, row);
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  const train = steps.map((s) => byStep.get(s)!.loss);
  return [steps, train, smooth(train, smoothing), steps.map((s) => byStep.get(s)!.evalLoss)];
}

function options(width: number, height: number, chart: ChartOptions, totalSteps: number, ink: string): uPlot.Options {
  const axis = { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.18)' }, ticks: { stroke: 'rgba(128,128,128,0.3)' } };
  return {
    width,
    height,
    pxAlign: false,
    scales: {
      x: { time: false, range: (_, min, max) => [Math.min(0, min), Math.max(totalSteps, max)] },
      y: chart.log ? { distr: 3 } : { range: (_, _min, max) => [0, Math.max(0.1, max) * 1.05] },
    },
    axes: [
      { ...axis, label: 'optimizer step' },
      { ...axis, label: chart.log ? 'loss (log)' : 'loss' },
    ],
    series: [
      { label: 'step' },
      { label: 'train loss (raw)', stroke: `${TRAIN}55`, width: 1, show: chart.smoothing > 0, value: (_, v) => fmt(v) },
      { label: chart.smoothing > 0 ? 'train loss (smoothed)' : 'train loss', stroke: TRAIN, width: 2, value: (_, v) => fmt(v) },
      {
        label: 'eval loss',
        stroke: EVAL,
        width: 2,
        dash: [5, 4],
        spanGaps: true,
        points: { show: true, size: 7, fill: EVAL },
        value: (_, v) => fmt(v),
      },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '—' : v.toFixed(4));

export class LossChart {
  readonly element: HTMLElement;
  private readonly host = el('div', { class: 'chart-host' });
  private readonly empty = el('p', { class: 'chart-empty' }, 'The loss appears here after the first step.');
  private readonly logBox = el('input', { type: 'checkbox', 'data-testid': 'chart-log' });
  private readonly smoothing = el('input', { type: 'range', min: 0, max: 0.95, step: 0.05, value: 0.6, 'data-testid': 'chart-smoothing' });
  private readonly smoothingValue = el('span', { class: 'muted small' });
  private history: HistoryPoint[] = [];
  private totalSteps = 1;
  private plot: uPlot | null = null;

  constructor() {
    this.logBox.addEventListener('change', () => this.rebuild());
    this.smoothing.addEventListener('input', () => this.rebuild());
    const controls = el(
      'div',
      { class: 'chart-controls' },
      el('label', { class: 'check' }, this.logBox, 'Log scale'),
      el('label', { class: 'check' }, 'Smoothing ', this.smoothing, this.smoothingValue),
    );
    this.element = el('div', { class: 'chart', 'data-testid': 'loss-chart' }, controls, this.host, this.empty);
    // The panel may be hidden when the chart is built; it takes its width once it is shown.
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT })).observe(this.host);
    this.rebuild();
  }

  get options(): ChartOptions {
    return { log: this.logBox.checked, smoothing: Number(this.smoothing.value) };
  }

  /** The points drawn so far, for the report. */
  get points(): HistoryPoint[] {
    return [...this.history];
  }

  reset(totalSteps: number, history: HistoryPoint[] = []): void {
    this.totalSteps = Math.max(1, totalSteps);
    this.history = [...history];
    this.rebuild();
  }

  add(point: HistoryPoint): void {
    this.history.push(point);
    this.count();
    this.plot?.setData(columns(this.history, this.options.smoothing));
  }

  private width(): number {
    return Math.max(320, this.host.clientWidth || 720);
  }

  private count(): void {
    this.element.dataset.trainPoints = String(this.history.filter((p) => p.loss !== undefined).length);
    this.element.dataset.evalPoints = String(this.history.filter((p) => p.evalLoss !== undefined).length);
    this.empty.hidden = this.history.length > 0;
    this.host.style.visibility = this.empty.hidden ? 'visible' : 'hidden';
  }

  private rebuild(): void {
    this.plot?.destroy();
    const chart = this.options;
    this.smoothingValue.textContent = chart.smoothing.toFixed(2);
    const ink = getComputedStyle(document.documentElement).getPropertyValue('--muted').trim() || '#5f6274';
    this.plot = new uPlot(options(this.width(), HEIGHT, chart, this.totalSteps, ink), columns(this.history, chart.smoothing), this.host);
    this.element.dataset.scale = chart.log ? 'log' : 'linear';
    this.count();
  }
}

/**
 * The loss chart as a PNG (a data: URL) on a white background, with a title and a legend: what the
 * report embeds and the PNG download holds. Drawn by uPlot off screen at a fixed size.
 */
export async function lossChartPng(history: HistoryPoint[], totalSteps: number, chart: ChartOptions, title: string): Promise<string> {
  const width = 960;
  const height = 420;
  const host = el('div', { style: 'position: fixed; left: -10000px; top: 0;' });
  document.body.append(host);
  try {
    const drawn = new Promise<uPlot>((resolve) => {
      const opts = options(width, height, chart, Math.max(1, totalSteps), '#444');
      opts.hooks = { draw: [(u) => resolve(u)] };
      new uPlot(opts, columns(history, chart.smoothing), host);
    });
    const plot = await drawn;
    const ratio = 2;
    const top = 64;
    const canvas = document.createElement('canvas');
    canvas.width = width * ratio;
    canvas.height = (height + top) * ratio;
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.scale(ratio, ratio);
    ctx.fillStyle = '#1c1d26';
    ctx.font = '600 18px system-ui, sans-serif';
    ctx.fillText(title, 16, 26);
    const legend: [string, string][] = [
      [chart.smoothing > 0 ? `train loss (smoothed ${chart.smoothing.toFixed(2)})` : 'train loss', TRAIN],
      ['eval loss', EVAL],
    ];
    ctx.font = '14px system-ui, sans-serif';
    let x = 16;
    for (const [label, colour] of legend) {
      ctx.fillStyle = colour;
      ctx.fillRect(x, 44, 22, 4);
      ctx.fillStyle = '#444';
      ctx.fillText(label, x + 28, 50);
      x += 40 + ctx.measureText(label).width;
    }
    ctx.drawImage(plot.ctx.canvas, 0, top, width, height);
    plot.destroy();
    return canvas.toDataURL('image/png');
  } finally {
    host.remove();
  }
}

/**
 * The training and eval loss over optimizer steps, as an SVG line chart. A new point redraws the
 * two lines and adds its dot; the axes and the dots already drawn are redrawn only when the scale changes.
 */
import type { HistoryPoint } from '../../storage/db';
import { el, svgEl } from '../dom';

const WIDTH = 720;
const HEIGHT = 280;
const PAD = { left: 52, right: 16, top: 16, bottom: 36 };
const PLOT_W = WIDTH - PAD.left - PAD.right;
const PLOT_H = HEIGHT - PAD.top - PAD.bottom;

/** Round tick spacing (1, 2 or 5 times a power of ten) giving about `count` ticks over [0, max]. */
function niceStep(max: number, count: number): number {
  const raw = max / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

type Point = readonly [step: number, loss: number];

export class LossChart {
  readonly element: HTMLElement;
  private readonly root: SVGSVGElement;
  private readonly grid = svgEl('g', { class: 'chart-grid' });
  private readonly trainPath = svgEl('path', { class: 'chart-line train', 'data-testid': 'chart-train' });
  private readonly evalPath = svgEl('path', { class: 'chart-line eval', 'data-testid': 'chart-eval' });
  private readonly evalDots = svgEl('g', { class: 'chart-dots eval' });
  private readonly empty = el('p', { class: 'chart-empty' }, 'The loss appears here after the first step.');
  private train: Point[] = [];
  private evals: Point[] = [];
  private totalSteps = 1;
  /** The scale the axes and dots are drawn for; '' before the first draw. */
  private scale = '';
  private yMax = 1;

  constructor() {
    this.root = svgEl('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': 'Loss per step' });
    this.root.append(this.grid, this.trainPath, this.evalPath, this.evalDots);
    const legend = el(
      'div',
      { class: 'chart-legend' },
      el('span', { class: 'key train' }),
      'train loss ',
      el('span', { class: 'key eval' }),
      'eval loss',
    );
    this.element = el('div', { class: 'chart', 'data-testid': 'loss-chart' }, legend, this.root, this.empty);
    this.draw();
  }

  reset(totalSteps: number, history: HistoryPoint[] = []): void {
    this.totalSteps = Math.max(1, totalSteps);
    this.train = [];
    this.evals = [];
    for (const point of history) this.push(point);
    this.scale = '';
    this.draw();
  }

  add(point: HistoryPoint): void {
    const evalsBefore = this.evals.length;
    this.push(point);
    this.draw(evalsBefore);
  }

  private push(point: HistoryPoint): void {
    if (point.loss !== undefined) this.train.push([point.step, point.loss]);
    if (point.evalLoss !== undefined) this.evals.push([point.step, point.evalLoss]);
  }

  private x(step: number): number {
    return PAD.left + (step / this.totalSteps) * PLOT_W;
  }

  private y(loss: number): number {
    return PAD.top + PLOT_H - (Math.min(loss, this.yMax) / this.yMax) * PLOT_H;
  }

  /** Redraws the lines; the axes and every dot when the scale changed, else only the dots after `evalsDrawn`. */
  private draw(evalsDrawn = 0): void {
    this.element.dataset.trainPoints = String(this.train.length);
    this.element.dataset.evalPoints = String(this.evals.length);
    this.empty.hidden = this.train.length + this.evals.length > 0;
    this.root.style.visibility = this.empty.hidden ? 'visible' : 'hidden';
    const maxLoss = Math.max(0.1, ...this.train.map(([, l]) => l), ...this.evals.map(([, l]) => l));
    const yStep = niceStep(maxLoss, 5);
    this.yMax = Math.ceil(maxLoss / yStep) * yStep;
    const scale = `${this.yMax}/${yStep}/${this.totalSteps}`;
    if (scale !== this.scale) {
      this.scale = scale;
      this.drawAxes(yStep);
      this.evalDots.replaceChildren();
      evalsDrawn = 0;
    }
    const line = (pts: Point[]) => pts.map(([s, l], i) => `${i ? 'L' : 'M'}${this.x(s).toFixed(1)},${this.y(l).toFixed(1)}`).join('');
    this.trainPath.setAttribute('d', line(this.train));
    this.evalPath.setAttribute('d', line(this.evals));
    for (const [s, l] of this.evals.slice(evalsDrawn)) this.evalDots.append(svgEl('circle', { cx: this.x(s), cy: this.y(l), r: 3.5 }));
  }

  private drawAxes(yStep: number): void {
    this.grid.replaceChildren();
    for (let v = 0; v <= this.yMax + 1e-9; v += yStep) {
      this.grid.append(
        svgEl('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: this.y(v), y2: this.y(v) }),
        svgEl('text', { x: PAD.left - 8, y: this.y(v) + 4, 'text-anchor': 'end' }, Number(v.toPrecision(3)).toString()),
      );
    }
    const xStep = Math.max(1, Math.round(niceStep(this.totalSteps, 6)));
    for (let s = 0; s <= this.totalSteps; s += xStep) {
      this.grid.append(svgEl('text', { x: this.x(s), y: HEIGHT - PAD.bottom + 18, 'text-anchor': 'middle' }, String(s)));
    }
    const axisTitle = { x: PAD.left + PLOT_W / 2, y: HEIGHT - 4, 'text-anchor': 'middle', class: 'axis-title' };
    this.grid.append(svgEl('text', axisTitle, 'optimizer step'));
  }
}

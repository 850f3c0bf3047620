/** The training and eval loss over optimizer steps, as an SVG line chart that redraws on each point. */
import type { HistoryPoint } from '../../storage/db';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 720;
const HEIGHT = 280;
const PAD = { left: 52, right: 16, top: 16, bottom: 36 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

/** Round tick spacing (1, 2 or 5 times a power of ten) giving about `count` ticks over [0, max]. */
function niceStep(max: number, count: number): number {
  const raw = max / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

export class LossChart {
  readonly element: HTMLElement;
  private readonly root: SVGSVGElement;
  private readonly grid = svg('g', { class: 'chart-grid' });
  private readonly trainPath = svg('path', { class: 'chart-line train', 'data-testid': 'chart-train' });
  private readonly evalPath = svg('path', { class: 'chart-line eval', 'data-testid': 'chart-eval' });
  private readonly evalDots = svg('g', { class: 'chart-dots eval' });
  private readonly empty: HTMLElement;
  private points: HistoryPoint[] = [];
  private totalSteps = 1;

  constructor() {
    this.root = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': 'Loss per step' });
    this.root.append(this.grid, this.trainPath, this.evalPath, this.evalDots);
    this.empty = document.createElement('p');
    this.empty.className = 'chart-empty';
    this.empty.textContent = 'The loss appears here after the first step.';
    const legend = document.createElement('div');
    legend.className = 'chart-legend';
    legend.innerHTML = '<span class="key train"></span>train loss <span class="key eval"></span>eval loss';
    this.element = document.createElement('div');
    this.element.className = 'chart';
    this.element.dataset.testid = 'loss-chart';
    this.element.append(legend, this.root, this.empty);
    this.draw();
  }

  reset(totalSteps: number, history: HistoryPoint[] = []): void {
    this.totalSteps = Math.max(1, totalSteps);
    this.points = [...history];
    this.draw();
  }

  add(point: HistoryPoint): void {
    this.points.push(point);
    this.draw();
  }

  private draw(): void {
    const train = this.points.filter((p) => p.loss !== undefined).map((p) => [p.step, p.loss!] as const);
    const evals = this.points.filter((p) => p.evalLoss !== undefined).map((p) => [p.step, p.evalLoss!] as const);
    this.element.dataset.trainPoints = String(train.length);
    this.element.dataset.evalPoints = String(evals.length);
    this.empty.hidden = train.length + evals.length > 0;
    this.root.style.visibility = this.empty.hidden ? 'visible' : 'hidden';
    const maxLoss = Math.max(0.1, ...train.map(([, l]) => l), ...evals.map(([, l]) => l));
    const yStep = niceStep(maxLoss, 5);
    const yMax = Math.ceil(maxLoss / yStep) * yStep;
    const xStep = Math.max(1, Math.round(niceStep(this.totalSteps, 6)));
    const plotW = WIDTH - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const x = (step: number) => PAD.left + (step / this.totalSteps) * plotW;
    const y = (loss: number) => PAD.top + plotH - (Math.min(loss, yMax) / yMax) * plotH;

    this.grid.replaceChildren();
    for (let v = 0; v <= yMax + 1e-9; v += yStep) {
      this.grid.append(svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }));
      const label = svg('text', { x: PAD.left - 8, y: y(v) + 4, 'text-anchor': 'end' });
      label.textContent = Number(v.toPrecision(3)).toString();
      this.grid.append(label);
    }
    for (let s = 0; s <= this.totalSteps; s += xStep) {
      const label = svg('text', { x: x(s), y: HEIGHT - PAD.bottom + 18, 'text-anchor': 'middle' });
      label.textContent = String(s);
      this.grid.append(label);
    }
    const axis = svg('text', { x: PAD.left + plotW / 2, y: HEIGHT - 4, 'text-anchor': 'middle', class: 'axis-title' });
    axis.textContent = 'optimizer step';
    this.grid.append(axis);

    const line = (pts: (readonly [number, number])[]) =>
      pts.map(([s, l], i) => `${i ? 'L' : 'M'}${x(s).toFixed(1)},${y(l).toFixed(1)}`).join('');
    this.trainPath.setAttribute('d', line(train));
    this.evalPath.setAttribute('d', line(evals));
    this.evalDots.replaceChildren(...evals.map(([s, l]) => svg('circle', { cx: x(s), cy: y(l), r: 3.5 })));
  }
}

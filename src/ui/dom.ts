/** Small DOM and formatting helpers shared by the panels. Text always goes in as text, never as HTML. */
import type { DatasetRow } from '../data/types';

type Child = Node | string | null | undefined | false;

/** Creates an element; `on*` attributes that are functions become listeners, `style` inline style, others attributes. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | EventListener | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') node.addEventListener(name.slice(2), value);
    // Through the CSSOM: the site's policy (style-src 'self') refuses style attributes set as markup.
    else if (name === 'style') node.style.cssText = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) node.append(child);
  return node;
}

/** Creates an SVG element with attributes and, when given, its text. */
export function svgEl<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  text?: string,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The title bar every step's panel opens with: the step's name and one paragraph on what it does. */
export function panelHeader(title: string, intro: string): HTMLElement {
  return el('header', { class: 'panel-title' }, el('h2', {}, title), el('p', {}, intro));
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toFixed(value < 10 ? 2 : 1))} ${units[unit]}`;
}

/** 262,144 -> "262K", 134,515,008 -> "135M". */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${Number((n / 1e9).toFixed(2))}B`;
  if (n >= 1e6) return `${Number((n / 1e6).toFixed(n >= 1e8 ? 0 : 1))}M`;
  if (n >= 1e3) return `${Number((n / 1e3).toFixed(n >= 1e5 ? 0 : 1))}K`;
  return String(n);
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function formatLoss(loss: number | null | undefined): string {
  return loss === null || loss === undefined || !Number.isFinite(loss) ? '—' : loss.toFixed(4);
}

export const plural = (n: number, word: string) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

export const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length)}…` : text);

/** A dataset row on one line, whatever its format. */
export function rowText(row: DatasetRow): string {
  switch (row.kind) {
    case 'text':
      return row.text;
    case 'completion':
      return `${row.prompt} ⟶ ${row.completion}`;
    case 'chat':
      return row.messages.map((m) => `${m.role}: ${m.content}`).join('  ·  ');
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A message box that shows errors or notes; hidden while empty. */
export class Notice {
  readonly element: HTMLElement;

  constructor(testId: string) {
    this.element = el('div', { class: 'notice', role: 'alert', 'data-testid': testId, hidden: true });
  }

  show(message: string, kind: 'error' | 'ok' = 'error'): void {
    this.element.textContent = message;
    this.element.dataset.kind = kind;
    this.element.hidden = false;
  }

  clear(): void {
    this.element.textContent = '';
    this.element.hidden = true;
  }
}

/** Starts a browser download of bytes under a file name. */
export function downloadBytes(bytes: Uint8Array<ArrayBuffer> | Blob, fileName: string, type: string): void {
  const url = URL.createObjectURL(bytes instanceof Blob ? bytes : new Blob([bytes], { type }));
  const link = el('a', { href: url, download: fileName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

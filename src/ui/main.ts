import './styles.css';
import { Gpu } from '../gpu/context';
import { requestDeviceWithAdapterLimits } from '../gpu/device';
import { WebGpuUnavailableError } from '../gpu/errors';
import { describeAdapter, describeLimits, requestAdapter, runSelfCheck } from './gpu-check';
import type { AdapterSummary, LimitsSummary, SelfCheckResult } from './gpu-check';

/** Outcome of the WebGPU check, also exposed as `document.body.dataset.webgpu` for tests. */
type GpuState = 'checking' | 'ready' | 'unavailable' | 'failed';

const STATE_LABELS: Record<GpuState, string> = {
  checking: 'Checking…',
  ready: 'Ready',
  unavailable: 'Unavailable',
  failed: 'Failed',
};

/** Creates an element with attributes and children (strings become text, never HTML). */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toFixed(value < 10 ? 2 : 1))} ${units[unit]}`;
}

const LOGO = `<svg viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="7"/>
<path d="M7 20l5-9 5 7 3-4 5 6"/></svg>`;

function renderShell(root: HTMLElement): GpuPanel {
  const brand = el('a', { class: 'brand', href: '/' }, 'webtune');
  brand.insertAdjacentHTML('afterbegin', LOGO);
  const header = el(
    'header',
    { class: 'topbar' },
    brand,
    el('span', { class: 'topbar-note' }, 'LoRA fine-tuning in your browser'),
  );
  const hero = el(
    'section',
    { class: 'hero' },
    el('h1', {}, 'Fine-tune language models on your own GPU'),
    el(
      'p',
      {},
      'webtune trains LoRA adapters for Llama-family models right in this tab, through WebGPU. ' +
        'Your training data stays on your machine.',
    ),
  );
  const panel = new GpuPanel();
  root.replaceChildren(header, el('main', { class: 'page' }, hero, panel.element));
  return panel;
}

/** The card that reports what this browser's GPU offers and whether it computes correctly. */
class GpuPanel {
  readonly element: HTMLElement;
  private readonly pill = el('span', { class: 'pill' });
  private readonly message = el('p', { class: 'panel-message', role: 'status' });
  private readonly facts = el('dl', { class: 'facts' });
  private readonly check = el('p', { class: 'self-check', hidden: '' });

  constructor() {
    this.element = el(
      'section',
      { class: 'panel', 'aria-labelledby': 'gpu-title' },
      el('div', { class: 'panel-head' }, el('h2', { id: 'gpu-title' }, 'WebGPU'), this.pill),
      this.message,
      this.facts,
      this.check,
    );
    this.setState('checking', 'Looking for a WebGPU adapter…');
  }

  setState(state: GpuState, message: string): void {
    this.pill.textContent = STATE_LABELS[state];
    this.pill.dataset.state = state;
    this.message.textContent = message;
    if (state !== 'checking') document.body.dataset.webgpu = state;
  }

  showAdapter(adapter: AdapterSummary): void {
    this.addFact('Vendor', adapter.vendor);
    this.addFact('Architecture', adapter.architecture);
    this.addFact('Description', adapter.description);
    if (adapter.software) {
      this.addFact('Note', 'Software rendering: it works, but training will be very slow.');
    }
  }

  showLimits(limits: LimitsSummary): void {
    this.addFact('Max storage binding', formatBytes(limits.maxStorageBufferBindingSize), limits.maxStorageBufferBindingSize);
    this.addFact('Max buffer', formatBytes(limits.maxBufferSize), limits.maxBufferSize);
    this.addFact('Workgroup storage', formatBytes(limits.maxComputeWorkgroupStorageSize), limits.maxComputeWorkgroupStorageSize);
    this.addFact('shader-f16', limits.shaderF16 ? 'Available' : 'Not available');
  }

  showSelfCheck(result: SelfCheckResult): void {
    this.check.hidden = false;
    this.check.dataset.ok = String(result.ok);
    this.check.textContent = result.ok
      ? `GPU self-check passed: ${result.count} sums computed by the residual kernel match the CPU (${result.ms.toFixed(0)} ms).`
      : `GPU self-check failed: ${result.mismatches} of ${result.count} sums differ from the CPU; ` +
        `element ${result.index} is ${result.actual} on the GPU but ${result.expected} on the CPU.`;
  }

  private addFact(term: string, value: string, exactBytes?: number): void {
    const dd = el('dd', {}, value || '—');
    if (exactBytes !== undefined) dd.title = `${exactBytes.toLocaleString('en-US')} bytes`;
    this.facts.append(el('dt', {}, term), dd);
  }
}

async function checkWebGpu(panel: GpuPanel): Promise<void> {
  try {
    const adapter = await requestAdapter();
    if (adapter) panel.showAdapter(describeAdapter(adapter));
    const device = await requestDeviceWithAdapterLimits(adapter);
    panel.showLimits(describeLimits(device));
    panel.setState('checking', 'Running a GPU self-check…');
    const result = await runSelfCheck(new Gpu(device));
    panel.showSelfCheck(result);
    if (result.ok) panel.setState('ready', 'WebGPU works in this browser.');
    else panel.setState('failed', 'This GPU computed wrong results; training on it would not be reliable.');
  } catch (error) {
    if (error instanceof WebGpuUnavailableError) {
      panel.setState('unavailable', error.message);
    } else {
      console.error(error);
      panel.setState('failed', error instanceof Error ? error.message : String(error));
    }
  }
}

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app element');
void checkWebGpu(renderShell(root));

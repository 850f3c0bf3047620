import './styles.css';
import './site.css';
import type { DeviceInfo } from '../app/api';
import { registerServiceWorker } from '../site/register';
import { TEST_HOOKS } from '../testing/hooks';
import { startEngine } from '../worker/client';
import { App } from './app';
import { el, errorMessage, formatBytes, svgEl } from './dom';
import { AdaptersPanel } from './panels/adapters';
import { ChatPanel } from './panels/chat';
import { ComparePanel } from './panels/compare';
import { DataPanel } from './panels/data';
import { EvaluationPanel } from './panels/evaluation';
import { ModelPanel } from './panels/model';
import { SettingsPanel } from './panels/settings';
import { TrainingPanel } from './panels/training';
import { ShareButton, ShareLinkDialog } from './views/share';

function logo(): SVGSVGElement {
  const icon = svgEl('svg', { viewBox: '0 0 32 32', 'aria-hidden': 'true' });
  icon.append(svgEl('rect', { width: 32, height: 32, rx: 7 }), svgEl('path', { d: 'M7 20l5-9 5 7 3-4 5 6' }));
  return icon;
}

const BADGE_LABELS: Record<DeviceInfo['state'] | 'checking', string> = {
  checking: 'Checking WebGPU…',
  ready: 'WebGPU ready',
  unavailable: 'WebGPU unavailable',
  failed: 'WebGPU failed',
};

/** The header badge: the WebGPU state at a glance, the device facts and the self-check on click. */
class GpuBadge {
  readonly element: HTMLDetailsElement;
  private readonly pill = el('span', { class: 'pill', 'data-testid': 'webgpu-state' });
  private readonly body = el('div', { class: 'gpu-popover' });

  constructor() {
    this.element = el('details', { class: 'gpu-badge', 'data-testid': 'gpu-badge' }, el('summary', {}, this.pill), this.body);
    this.set('checking', 'Looking for a WebGPU adapter…');
  }

  set(state: DeviceInfo['state'] | 'checking', message: string): void {
    this.pill.textContent = BADGE_LABELS[state];
    this.pill.dataset.state = state;
    this.body.replaceChildren(el('p', { class: 'panel-message', role: 'status' }, message));
    if (state !== 'checking') document.body.dataset.webgpu = state;
  }

  show(info: DeviceInfo): void {
    this.set(info.state, info.message);
    if (info.software && info.state === 'ready') this.pill.textContent = 'WebGPU ready · software';
    const facts = el('dl', { class: 'facts' });
    const add = (term: string, value: string, exact?: number) => {
      facts.append(
        el('dt', {}, term),
        el('dd', exact === undefined ? {} : { title: `${exact.toLocaleString('en-US')} bytes` }, value || '—'),
      );
    };
    add('Vendor', info.vendor);
    add('Architecture', info.architecture);
    add('Description', info.description);
    if (info.software) add('Note', 'Software rendering: it works, but training will be very slow.');
    if (info.limits) {
      add('Max storage binding', formatBytes(info.limits.maxStorageBufferBindingSize), info.limits.maxStorageBufferBindingSize);
      add('Max buffer', formatBytes(info.limits.maxBufferSize), info.limits.maxBufferSize);
      add('Workgroup storage', formatBytes(info.limits.maxComputeWorkgroupStorageSize), info.limits.maxComputeWorkgroupStorageSize);
      add('shader-f16', info.shaderF16 ? 'Available' : 'Not available');
    }
    this.body.append(facts);
    const check = info.selfCheck;
    if (check) {
      this.body.append(
        el(
          'p',
          { class: 'self-check', 'data-ok': String(check.ok) },
          check.ok
            ? `GPU self-check passed: ${check.count} sums computed by the residual kernel match the CPU (${check.ms.toFixed(0)} ms).`
            : `GPU self-check failed: ${check.mismatches} of ${check.count} sums differ from the CPU; ` +
                `element ${check.index} is ${check.actual} on the GPU but ${check.expected} on the CPU.`,
        ),
      );
    }
  }
}

async function boot(root: HTMLElement): Promise<void> {
  const brand = el('a', { class: 'brand', href: './' }, logo(), 'webtune');
  const badge = new GpuBadge();
  const banner = el('div', { class: 'banner', 'data-testid': 'webgpu-banner', role: 'alert', hidden: true });
  const main = el('main', { class: 'page' });
  root.replaceChildren(
    el(
      'header',
      { class: 'topbar' },
      brand,
      el('span', { class: 'topbar-note' }, 'LoRA fine-tuning on your own GPU · your data never leaves this tab'),
      badge.element,
    ),
    main,
  );
  main.append(banner);

  const app = new App(startEngine());
  // The e2e build only (src/testing/hooks.ts): the engine handle, through which tests arm fault hooks.
  if (TEST_HOOKS) (window as { __webtuneTest?: unknown }).__webtuneTest = { engine: app.engine };
  const shareDialog = new ShareLinkDialog(app);
  main.append(shareDialog.element);
  root.querySelector('.topbar')!.insertBefore(new ShareButton(app).element, badge.element);
  app.mount(main, {
    model: new ModelPanel(app),
    data: new DataPanel(app),
    settings: new SettingsPanel(app),
    training: new TrainingPanel(app),
    evaluate: new EvaluationPanel(app),
    compare: new ComparePanel(app),
    adapters: new AdaptersPanel(app),
    chat: new ChatPanel(app),
  });

  try {
    const device = await app.engine.init();
    badge.show(device);
    if (device.state !== 'ready') {
      banner.replaceChildren(
        el('strong', {}, device.state === 'unavailable' ? 'WebGPU is not available here. ' : 'WebGPU is not working here. '),
        device.message,
        el('p', {}, 'You can still look around and import data, but loading a model and training need WebGPU.'),
      );
      banner.hidden = false;
    }
    app.update({ device });
    const [presets] = await Promise.all([app.engine.listPresets(), app.refreshDatasets(), app.refreshRuns(), app.refreshAdapters()]);
    app.update({ presets });
    document.body.dataset.ready = 'true';
    await shareDialog.open(location.hash);
  } catch (error) {
    console.error(error);
    badge.set('failed', errorMessage(error));
    banner.textContent = `webtune could not start: ${errorMessage(error)}`;
    banner.hidden = false;
  }
}

const root = document.getElementById('app');
if (!root) throw new Error('index.html has no #app element');
registerServiceWorker();
void boot(root);

import type { ModelInfo, ModelLoadOptions } from '../../app/api';
import { WEIGHT_PRECISIONS, type WeightPrecision } from '../../model/weight-format';
import type { App, Panel } from '../app';
import { el, errorMessage, formatBytes, formatCount, Notice, panelHeader } from '../dom';
import { memoryView } from '../views/memory';

const DEFAULT_HUB_MODEL = 'HuggingFaceTB/SmolLM2-135M-Instruct';

interface PickedFile {
  path: string;
  file: File;
}

/** Files of a dropped folder, walked through the entry API (a drop gives no webkitRelativePath). */
async function droppedFiles(items: DataTransferItemList): Promise<PickedFile[]> {
  const entries = [...items].map((item) => item.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  const out: PickedFile[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      out.push({ path: prefix + entry.name, file });
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries returns the folder in batches until it returns an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of entries) await walk(entry, '');
  return out;
}

/** The folder name shared by picked files ("stories260K/config.json" -> "stories260K"). */
function folderName(files: PickedFile[]): string {
  const roots = new Set(files.map((f) => (f.path.includes('/') ? f.path.slice(0, f.path.indexOf('/')) : '')));
  const [root] = roots;
  return roots.size === 1 && root ? root : 'local model';
}

export class ModelPanel implements Panel {
  readonly element: HTMLElement;
  private readonly notice = new Notice('model-error');
  private readonly status = el('p', { class: 'status-line', 'data-testid': 'model-status', role: 'status' });
  private readonly progress = el('progress', { class: 'progress', max: 1, value: 0, hidden: true });
  private readonly info = el('div', { class: 'model-info', 'data-testid': 'model-info', hidden: true });
  private readonly memory = el('div');
  private readonly folderInput: HTMLInputElement;
  private readonly hubInput: HTMLInputElement;
  private readonly hubButton: HTMLButtonElement;
  private readonly precision: HTMLSelectElement;
  private readonly drop: HTMLElement;
  private busy = false;

  constructor(private readonly app: App) {
    this.folderInput = el('input', {
      type: 'file',
      webkitdirectory: true,
      multiple: true,
      class: 'visually-hidden',
      id: 'model-folder',
      'data-testid': 'model-folder-input',
    });
    this.folderInput.addEventListener('change', () => {
      const files = [...(this.folderInput.files ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
      this.folderInput.value = '';
      if (files.length) void this.loadLocal(files);
    });
    const drop = (this.drop = el(
      'label',
      { class: 'dropzone', for: 'model-folder', 'data-testid': 'model-drop' },
      el('strong', {}, 'Choose a model folder'),
      el('span', {}, 'or drop it here: config.json, tokenizer.json and model.safetensors (or its shards)'),
    ));
    drop.addEventListener('dragover', (event) => {
      event.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (event) => {
      event.preventDefault();
      drop.classList.remove('over');
      if (!event.dataTransfer || this.folderInput.disabled) return;
      void droppedFiles(event.dataTransfer.items).then(
        (files) => this.loadLocal(files),
        (error) => this.notice.show(`Could not read the dropped folder: ${errorMessage(error)}`),
      );
    });

    this.hubInput = el('input', {
      type: 'text',
      value: DEFAULT_HUB_MODEL,
      spellcheck: false,
      'data-testid': 'hub-id',
      'aria-label': 'Hugging Face model id',
    });
    this.hubButton = el(
      'button',
      { type: 'button', class: 'secondary', 'data-testid': 'hub-load', onclick: () => void this.loadHub() },
      'Download',
    );
    this.precision = el(
      'select',
      { 'data-testid': 'weights-precision', 'aria-label': 'Weight precision on the GPU' },
      ...WEIGHT_PRECISIONS.map((p) => el('option', { value: p }, p === 'auto' ? 'as stored' : p)),
    );
    const precision = el(
      'label',
      { class: 'inline', title: "bf16 and f16 halve the weights' GPU memory; adapters always train in f32." },
      'Weights on the GPU ',
      this.precision,
    );
    const hub = el(
      'div',
      { class: 'hub' },
      el('label', { class: 'field-label' }, 'Or download from the Hugging Face Hub'),
      el('div', { class: 'inline' }, this.hubInput, this.hubButton),
      el('p', { class: 'hint' }, 'Files are cached in this browser, so the next visit loads them from disk. Public models only.'),
    );

    this.element = el(
      'section',
      { class: 'panel' },
      panelHeader('Model', 'A Llama-family model (Llama, SmolLM2, TinyLlama, Qwen2) in Hugging Face format.'),
      el('div', { class: 'grid-2' }, el('div', {}, this.folderInput, drop), hub),
      precision,
      this.status,
      this.progress,
      this.notice.element,
      this.info,
      this.memory,
      el(
        'div',
        { class: 'actions' },
        el('button', { type: 'button', 'data-testid': 'to-data', onclick: () => app.goTo('data') }, 'Next: data'),
      ),
    );
    app.watch(
      (s) => [s.training, s.device],
      () => this.renderControls(),
    );
    app.watch(
      (s) => [s.model, s.estimate, s.estimateError],
      (model, estimate, error) => this.memory.replaceChildren(memoryView(model ? estimate : null, model ? error : null)),
    );
    app.watch(
      (s) => [s.model],
      (model) => {
        app.note('model', model ? `${formatCount(model.parameterCount)} params` : 'Not loaded');
        if (model) this.showInfo(model);
      },
    );
  }

  private renderControls(): void {
    const { training, device } = this.app.state;
    const blocked = this.busy || training || (device !== null && device.state !== 'ready');
    this.hubButton.disabled = blocked;
    this.precision.disabled = blocked;
    this.folderInput.disabled = blocked;
    this.drop.classList.toggle('disabled', blocked);
  }

  private async loadLocal(files: PickedFile[]): Promise<void> {
    const name = folderName(files);
    const options = this.loadOptions();
    await this.run(`Loading ${name}…`, () => this.app.engine.loadLocalModel(files, name, (message) => this.setStatus(message), options));
  }

  private async loadHub(): Promise<void> {
    const repo = this.hubInput.value.trim();
    const options = this.loadOptions();
    await this.run(`Fetching ${repo}…`, () =>
      this.app.engine.loadHubModel(
        repo,
        (p) => {
          const size = p.total ? ` of ${p.total.toLocaleString('en-US')}` : '';
          const file = `(file ${p.filesDone + 1} of ${p.filesTotal})`;
          this.setStatus(
            `${p.fromCache ? 'From cache' : 'Downloading'} ${p.file}: ${p.loaded.toLocaleString('en-US')}${size} bytes ${file}`,
          );
          this.progress.hidden = !p.total;
          if (p.total) this.progress.value = Math.min(1, p.loaded / p.total);
        },
        options,
      ),
    );
  }

  private loadOptions(): ModelLoadOptions {
    return { weights: this.precision.value as WeightPrecision };
  }

  private async run(message: string, load: () => Promise<ModelInfo>): Promise<void> {
    this.busy = true;
    this.notice.clear();
    this.setStatus(message);
    this.renderControls();
    try {
      const model = await load();
      this.setStatus(`Loaded ${model.name}.`);
      this.app.update({ model });
    } catch (error) {
      this.setStatus('');
      this.notice.show(errorMessage(error));
    } finally {
      this.busy = false;
      this.progress.hidden = true;
      this.renderControls();
    }
  }

  private setStatus(message: string): void {
    this.status.textContent = message;
  }

  private showInfo(model: ModelInfo): void {
    const facts: [string, string, string][] = [
      ['Model', model.name, 'model-name'],
      ['Architecture', model.architecture, 'model-architecture'],
      ['Parameters', `${formatCount(model.parameterCount)} (${model.parameterCount.toLocaleString('en-US')})`, 'model-params'],
      ['Layers', String(model.layers), 'model-layers'],
      ['Hidden size', `${model.hidden} (MLP ${model.intermediate})`, 'model-hidden'],
      ['Attention heads', `${model.heads} query, ${model.kvHeads} key/value`, 'model-heads'],
      ['Vocabulary', model.vocab.toLocaleString('en-US'), 'model-vocab'],
      ['Context', `${model.maxPositions.toLocaleString('en-US')} tokens`, 'model-context'],
      ['Weights on GPU', `${model.weightPrecision}, ${formatBytes(model.weightBytes)}`, 'model-weights'],
      ['Tokenizer', model.tokenizerOk ? 'OK' : 'Not working', 'model-tokenizer'],
      ['Chat template', model.chatTemplate ? 'From the model' : 'None (a generic one is used for chat data)', 'model-chat'],
    ];
    const dl = el('dl', { class: 'facts' });
    for (const [term, value, id] of facts) dl.append(el('dt', {}, term), el('dd', { 'data-testid': id }, value));
    this.info.replaceChildren(dl);
    this.info.hidden = false;
  }
}

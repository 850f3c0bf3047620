import type { HubProgress, ModelInfo, ModelLoadOptions } from '../../app/api';
import { WEIGHT_PRECISIONS, type WeightPrecision } from '../../model/weight-format';
import type { App, Panel } from '../app';
import { el, errorMessage, formatCount, Notice, panelHeader } from '../dom';
import { CachedDownloads } from '../views/cached-downloads';
import { DemoCard } from '../views/demo';
import { memoryView } from '../views/memory';
import { modelFacts } from '../views/model-facts';
import { ollamaBlob, ollamaHelp, type OllamaStore, ollamaStore, type PickedFile } from '../views/ollama-store';
import { RememberedFolders } from '../views/remembered-folders';

const DEFAULT_HUB_MODEL = 'HuggingFaceTB/SmolLM2-135M-Instruct';

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
  private readonly ggufInput: HTMLInputElement;
  private readonly ollamaChoice = el('div', { class: 'ollama-choice', 'data-testid': 'ollama-choice', hidden: true });
  private readonly ollamaSelect = el('select', { 'data-testid': 'ollama-model', 'aria-label': 'Ollama model' });
  private readonly ollamaButton: HTMLButtonElement;
  private store: OllamaStore | null = null;
  private readonly hubInput: HTMLInputElement;
  private readonly hubButton: HTMLButtonElement;
  private readonly precision: HTMLSelectElement;
  private readonly drop: HTMLElement;
  private readonly ggufPick: HTMLElement;
  private readonly remembered: RememberedFolders;
  private readonly downloads: CachedDownloads;
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
      if (files.length) void this.picked(files);
    });
    // No accept filter: Ollama's blobs have no extension; the engine recognises a GGUF by its first bytes.
    this.ggufInput = el('input', {
      type: 'file',
      multiple: true,
      class: 'visually-hidden',
      id: 'model-gguf',
      'data-testid': 'model-gguf-input',
    });
    this.ggufInput.addEventListener('change', () => {
      const files = [...(this.ggufInput.files ?? [])].map((file) => ({ path: file.name, file }));
      this.ggufInput.value = '';
      if (files.length) void this.loadLocal(files, files.find((f) => !f.path.endsWith('.json'))?.path ?? files[0].path);
    });
    this.ollamaButton = el(
      'button',
      { type: 'button', class: 'secondary', 'data-testid': 'ollama-load', onclick: () => void this.loadOllama() },
      'Load',
    );
    this.ollamaChoice.append(
      el('label', { class: 'field-label' }, 'Models in this Ollama folder'),
      el('div', { class: 'inline' }, this.ollamaSelect, this.ollamaButton),
    );
    const drop = (this.drop = el(
      'label',
      { class: 'dropzone', for: 'model-folder', 'data-testid': 'model-drop' },
      el('strong', {}, 'Choose a model folder'),
      el('span', {}, "or drop it here: config.json, tokenizer.json and model.safetensors (or its shards), or Ollama's models folder"),
    ));
    const ggufPick = (this.ggufPick = el(
      'label',
      { class: 'dropzone small', for: 'model-gguf', 'data-testid': 'model-gguf-pick' },
      el('strong', {}, 'Choose a GGUF file'),
      el('span', {}, 'a .gguf (all parts of a split one) or an Ollama blob; add tokenizer.json to use the model’s own tokenizer'),
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
        (files) => this.picked(files),
        (error) => this.notice.show(`Could not read the dropped folder: ${errorMessage(error)}`),
      );
    });

    this.remembered = new RememberedFolders(
      app,
      (files) => this.picked(files),
      (message) => this.notice.show(message),
    );

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
    this.downloads = new CachedDownloads(app);
    hub.append(this.downloads.element);

    this.element = el(
      'section',
      { class: 'panel' },
      panelHeader(
        'Model',
        'A Llama-family model (Llama, SmolLM2, TinyLlama, Qwen2): a Hugging Face folder, or the GGUF file llama.cpp, ' +
          'LM Studio or Ollama runs (quantized ones too: training then sees exactly the quantized weights).',
      ),
      new DemoCard(app).element,
      el(
        'div',
        { class: 'grid-2' },
        el('div', {}, this.folderInput, drop, this.remembered.element, this.ggufInput, ggufPick, this.ollamaChoice),
        hub,
      ),
      ollamaHelp(),
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
    app.handle('loadModel', (ref) => (ref.kind === 'hub' ? this.loadHub(ref.id) : this.loadUrl(ref.url)));
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
    this.ggufInput.disabled = blocked;
    this.ollamaButton.disabled = blocked;
    this.drop.classList.toggle('disabled', blocked);
    this.ggufPick.classList.toggle('disabled', blocked);
    this.remembered.setDisabled(blocked);
    this.downloads.setDisabled(blocked);
  }

  /** A picked or dropped folder: Ollama's store asks which model; anything else goes to the engine as it is. */
  private async picked(files: PickedFile[]): Promise<void> {
    this.store = ollamaStore(files);
    this.ollamaChoice.hidden = this.store === null;
    if (!this.store) return this.loadLocal(files, folderName(files));
    this.ollamaSelect.replaceChildren(...this.store.models.map((m) => el('option', { value: m.manifestPath }, m.name)));
    this.notice.clear();
    this.setStatus(`An Ollama models folder with ${this.store.models.length} model(s): choose one and press Load.`);
  }

  private async loadOllama(): Promise<void> {
    const store = this.store;
    const model = store?.models.find((m) => m.manifestPath === this.ollamaSelect.value);
    if (!store || !model) return;
    try {
      const { file, notes } = await ollamaBlob(store, model);
      await this.loadLocal([file], model.name);
      if (notes.length && this.app.state.model?.name === model.name) this.notice.show(notes.join(' '), 'ok');
    } catch (error) {
      this.notice.show(errorMessage(error));
    }
  }

  private async loadLocal(files: PickedFile[], name: string): Promise<void> {
    const options = this.loadOptions();
    await this.run(`Loading ${name}…`, () => this.app.engine.loadLocalModel(files, name, (message) => this.setStatus(message), options));
  }

  private loadHub(repo = this.hubInput.value.trim()): Promise<ModelInfo | null> {
    this.hubInput.value = repo;
    const options = this.loadOptions();
    return this.run(`Fetching ${repo}…`, () => this.app.engine.loadHubModel(repo, (p) => this.showDownload(p), options));
  }

  private loadUrl(url: string): Promise<ModelInfo | null> {
    const options = this.loadOptions();
    return this.run(`Fetching ${url}…`, () => this.app.engine.loadUrlModel(url, (p) => this.showDownload(p), options));
  }

  private showDownload(p: HubProgress): void {
    const size = p.total ? ` of ${p.total.toLocaleString('en-US')}` : '';
    const where = p.fromCache ? 'From cache' : 'Downloading';
    this.setStatus(`${where} ${p.file}: ${p.loaded.toLocaleString('en-US')}${size} bytes (file ${p.filesDone + 1} of ${p.filesTotal})`);
    this.progress.hidden = !p.total;
    if (p.total) this.progress.value = Math.min(1, p.loaded / p.total);
  }

  private loadOptions(): ModelLoadOptions {
    return { weights: this.precision.value as WeightPrecision };
  }

  /** Loads with the controls locked and the outcome shown; the model, or null when it failed. */
  private async run(message: string, load: () => Promise<ModelInfo>): Promise<ModelInfo | null> {
    this.busy = true;
    this.notice.clear();
    this.setStatus(message);
    this.renderControls();
    try {
      const model = await load();
      this.setStatus(`Loaded ${model.name}.`);
      this.app.update({ model });
      return model;
    } catch (error) {
      this.setStatus('');
      this.notice.show(errorMessage(error));
      return null;
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
    this.info.replaceChildren(...modelFacts(model));
    this.info.hidden = false;
  }
}

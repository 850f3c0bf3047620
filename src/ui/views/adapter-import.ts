/**
 * The adapters panel's import control: a PEFT adapter zip, or the files or folder of one, from
 * webtune or Python PEFT. The worker checks it against the loaded model and stores it, or says why not.
 */
import type { ModelFileEntry } from '../../app/api';
import type { App } from '../app';
import { el, errorMessage, Notice } from '../dom';

export class AdapterImport {
  readonly element: HTMLElement;
  private readonly notice = new Notice('adapter-import-notice');
  private readonly filesInput = el('input', {
    type: 'file',
    multiple: true,
    accept: '.zip,.json,.safetensors,.bin',
    class: 'visually-hidden',
    id: 'adapter-import-files',
    'data-testid': 'adapter-import-files',
  });
  private readonly folderInput = el('input', {
    type: 'file',
    webkitdirectory: true,
    multiple: true,
    class: 'visually-hidden',
    id: 'adapter-import-folder',
    'data-testid': 'adapter-import-folder',
  });
  private readonly hint = el('p', { class: 'hint' });
  private busy = false;

  constructor(private readonly app: App) {
    for (const input of [this.filesInput, this.folderInput]) {
      input.addEventListener('change', () => {
        const files = [...(input.files ?? [])];
        input.value = '';
        if (files.length) void this.import(files);
      });
    }
    this.element = el(
      'div',
      { class: 'adapter-import' },
      el('h3', {}, 'Import an adapter'),
      el(
        'div',
        { class: 'inline' },
        this.filesInput,
        this.folderInput,
        el('label', { class: 'button secondary', for: 'adapter-import-files' }, 'Choose a zip or files'),
        el('label', { class: 'button secondary', for: 'adapter-import-folder' }, 'Choose a folder'),
      ),
      this.hint,
      this.notice.element,
    );
    app.watch(
      (s) => [s.model?.name ?? null],
      (model) => {
        this.hint.textContent = model
          ? 'A PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, or a zip of them) ' +
            `trained on ${model}; it is checked tensor by tensor against it.`
          : 'Load the base model first (step 1): an adapter is checked against it before it is stored.';
        this.renderInputs();
      },
    );
  }

  private renderInputs(): void {
    const disabled = this.busy || !this.app.state.model;
    this.filesInput.disabled = disabled;
    this.folderInput.disabled = disabled;
    this.element.dataset.disabled = String(disabled);
  }

  private async import(files: File[]): Promise<void> {
    const source: Blob | ModelFileEntry[] =
      files.length === 1 && /\.zip$/i.test(files[0].name)
        ? files[0]
        : files.map((file) => ({ path: file.webkitRelativePath || file.name, file }));
    this.busy = true;
    this.notice.clear();
    this.renderInputs();
    try {
      const adapter = await this.app.engine.importAdapter(source);
      await this.app.refreshAdapters();
      this.notice.show(
        `Imported "${adapter.name}" (r ${adapter.config.r}, alpha ${adapter.config.alpha} on ${adapter.config.targets.join(', ')}).`,
        'ok',
      );
    } catch (error) {
      this.notice.show(errorMessage(error));
    } finally {
      this.busy = false;
      this.renderInputs();
    }
  }
}

/**
 * The adapters panel's export section: an adapter of the loaded model as a PEFT zip, a GGUF LoRA or
 * the merged model, downloaded, with the Ollama Modelfile and commands to copy.
 */
import type { AdapterExport, AdapterSummary, ExportFormat, MergedGgufType, ModelInfo } from '../../app/api';
import type { App } from '../app';
import { downloadBytes, el, errorMessage, formatBytes, Notice } from '../dom';

const FORMATS: Record<ExportFormat, { label: string; use: string }> = {
  peft: { label: 'PEFT adapter (zip)', use: 'For transformers, vLLM and PEFT, and Ollama on llama-architecture bases.' },
  gguf: { label: 'GGUF LoRA (.gguf)', use: 'For llama.cpp (--lora) and Ollama, on llama and Qwen2 bases.' },
  merged: {
    label: 'Merged model (zip)',
    use: 'The base model with the adapter folded into its weights: a Hugging Face folder that needs no PEFT.',
  },
  'merged-gguf': {
    label: 'Merged model (.gguf)',
    use: 'The base model with the adapter folded into its weights as one GGUF file, for llama.cpp and ollama create.',
  },
};

/** Browsers append ".txt" to an extensionless text/plain download; Ollama wants the name Modelfile. */
const MODELFILE_TYPE = 'application/octet-stream';

/** A read-only block of text with a button that copies it, and any further buttons beside it. */
function copyable(text: string, testId: string, ...buttons: HTMLElement[]): HTMLElement {
  const status = el('span', { class: 'muted small', role: 'status' });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      status.textContent = 'Copied.';
    } catch {
      status.textContent = 'Copying was refused; select the text instead.';
    }
  };
  return el(
    'div',
    { class: 'copyable' },
    el('pre', { class: 'code', 'data-testid': testId }, text),
    el(
      'div',
      { class: 'inline' },
      el('button', { type: 'button', class: 'secondary', 'data-testid': `${testId}-copy`, onclick: () => void copy() }, 'Copy'),
      ...buttons,
      status,
    ),
  );
}

export class ExportSection {
  readonly element: HTMLElement;
  private readonly notice = new Notice('export-error');
  private readonly adapterSelect = el('select', { 'data-testid': 'export-adapter' });
  private readonly formatSelect = el(
    'select',
    { 'data-testid': 'export-format' },
    ...Object.entries(FORMATS).map(([value, { label }]) => el('option', { value }, label)),
  );
  private readonly formatUse = el('span', { class: 'hint' });
  private readonly dtypeSelect = el(
    'select',
    { 'data-testid': 'export-dtype' },
    el('option', { value: 'same' }, 'Same as the base'),
    el('option', { value: 'f32' }, 'f32'),
  );
  private readonly dtypeField: HTMLElement;
  private readonly ggufTypeSelect = el(
    'select',
    { 'data-testid': 'export-gguf-type' },
    el('option', { value: 'F16' }, 'F16'),
    el('option', { value: 'BF16' }, 'BF16'),
    el('option', { value: 'Q8_0' }, 'Q8_0 (half the size of F16)'),
    el('option', { value: 'F32' }, 'F32'),
  );
  private readonly ggufTypeField: HTMLElement;
  private readonly baseInput = el('input', {
    type: 'text',
    spellcheck: false,
    'data-testid': 'export-ollama-base',
    'aria-label': 'Ollama base model',
  });
  private readonly button = el('button', { type: 'button', class: 'primary', 'data-testid': 'export-download' }, 'Export and download');
  private readonly result = el('div', { class: 'export-result', 'data-testid': 'export-result', hidden: true });
  private busy = false;
  private chosen: string | null = null;

  constructor(private readonly app: App) {
    this.adapterSelect.addEventListener('change', () => {
      this.chosen = this.adapterSelect.value || null;
      this.renderButton();
    });
    this.formatSelect.addEventListener('change', () => this.renderFormat());
    this.button.addEventListener('click', () => void this.export());
    this.dtypeField = el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Merged weights'), this.dtypeSelect);
    this.ggufTypeField = el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'GGUF weights'), this.ggufTypeSelect);
    this.element = el(
      'div',
      { class: 'export' },
      el('h3', {}, 'Export'),
      el(
        'div',
        { class: 'fields' },
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Adapter'), this.adapterSelect),
        el('label', { class: 'field' }, el('span', { class: 'field-label' }, 'Format'), this.formatSelect, this.formatUse),
        this.dtypeField,
        this.ggufTypeField,
        el(
          'label',
          { class: 'field wide' },
          el('span', { class: 'field-label' }, 'Ollama base model (FROM)'),
          this.baseInput,
          el('span', { class: 'hint' }, 'The Ollama model or path of the exact base the adapter was trained on.'),
        ),
      ),
      el('div', { class: 'actions' }, this.button),
      this.notice.element,
      this.result,
    );
    this.renderFormat();
    app.watch(
      (s) => [s.adapters, s.model],
      (adapters, model) => this.renderAdapters(adapters, model),
    );
  }

  private renderAdapters(adapters: AdapterSummary[], model: ModelInfo | null): void {
    const usable = adapters.filter((a) => a.baseModel === model?.name);
    if (!usable.some((a) => a.id === this.chosen)) this.chosen = usable[0]?.id ?? null;
    this.adapterSelect.replaceChildren(...usable.map((a) => el('option', { value: a.id }, a.name)));
    if (usable.length === 0) {
      this.adapterSelect.append(el('option', { value: '' }, model ? 'No adapter for this model yet' : 'Load a model first'));
    }
    this.adapterSelect.value = this.chosen ?? '';
    this.baseInput.placeholder = model?.name ?? '';
    // A GGUF base has no Hugging Face folder to merge into.
    const merged = this.formatSelect.querySelector<HTMLOptionElement>('option[value="merged"]')!;
    merged.disabled = model?.format === 'gguf';
    if (merged.disabled && this.formatSelect.value === 'merged') this.formatSelect.value = 'merged-gguf';
    this.renderFormat();
    this.renderButton();
  }

  private renderFormat(): void {
    this.dtypeField.hidden = this.formatSelect.value !== 'merged';
    this.ggufTypeField.hidden = this.formatSelect.value !== 'merged-gguf';
    this.formatUse.textContent = FORMATS[this.formatSelect.value as ExportFormat].use;
  }

  private renderButton(): void {
    this.button.disabled = this.busy || !this.chosen;
  }

  private async export(): Promise<void> {
    if (!this.chosen) return;
    this.busy = true;
    this.notice.clear();
    this.result.hidden = true;
    this.renderButton();
    try {
      const out = await this.app.engine.exportAdapter({
        adapterId: this.chosen,
        format: this.formatSelect.value as ExportFormat,
        dtype: this.dtypeSelect.value as 'same' | 'f32',
        ggufType: this.ggufTypeSelect.value as MergedGgufType,
        ollamaBase: this.baseInput.value,
      });
      downloadBytes(out.bytes as Uint8Array<ArrayBuffer> | Blob, out.fileName, out.mimeType);
      this.showResult(out);
    } catch (error) {
      this.notice.show(errorMessage(error));
    } finally {
      this.busy = false;
      this.renderButton();
    }
  }

  private showResult(out: AdapterExport): void {
    const { modelfile, commands, notes } = out.ollama;
    const steps = modelfile
      ? [
          el('p', { class: 'hint' }, 'Save this as a file named Modelfile next to the download:'),
          copyable(
            modelfile,
            'export-modelfile',
            el(
              'button',
              {
                type: 'button',
                class: 'secondary',
                'data-testid': 'export-modelfile-download',
                onclick: () => downloadBytes(new TextEncoder().encode(modelfile), 'Modelfile', MODELFILE_TYPE),
              },
              'Download Modelfile',
            ),
          ),
          el('p', { class: 'hint' }, 'Then run, in that folder:'),
          copyable(commands.join('\n'), 'export-commands'),
        ]
      : [];
    this.result.replaceChildren(
      el(
        'p',
        { 'data-testid': 'export-file' },
        `Downloaded ${out.fileName} (${formatBytes(out.bytes instanceof Blob ? out.bytes.size : out.bytes.length)}).`,
      ),
      el('h4', {}, 'Ollama'),
      ...steps,
      el('ul', { class: 'notes', 'data-testid': 'export-notes' }, ...notes.map((n) => el('li', {}, n))),
    );
    this.result.hidden = false;
  }
}

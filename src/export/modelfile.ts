/**
 * Ollama Modelfiles and the steps to use an exported adapter with Ollama. Ollama applies adapters
 * in two ways with different limits: it converts a PEFT safetensors folder itself (llama
 * architecture only, reading lora_alpha as an unsigned integer and ignoring use_rslora), or it
 * takes a GGUF adapter as-is (any architecture llama.cpp knows, alpha stored as a float).
 */
import type { LoraConfig } from '../lora/config';
import type { ModelConfig } from '../model/config';
import { AdapterExportError } from './errors';

export type OllamaAdapterKind = 'peft' | 'gguf';

export function ollamaModelfile(opts: { base: string; adapterPath: string }): string {
  for (const [key, value] of Object.entries(opts)) {
    // Each Modelfile instruction is one line: a line break would smuggle in another instruction.
    if (/[\r\n]/.test(value) || value.trim() === '') {
      throw new AdapterExportError(`The Modelfile ${key} ${JSON.stringify(value)} must be one non-empty line.`);
    }
  }
  return `FROM ${opts.base}\nADAPTER ${opts.adapterPath}\n`;
}

/** Refuses an adapter Ollama would reject or apply with the wrong scale. */
export function checkOllamaAdapter(opts: {
  architecture: ModelConfig['architecture'];
  adapterKind: OllamaAdapterKind;
  lora: Pick<LoraConfig, 'alpha' | 'useRslora'>;
}): void {
  if (opts.adapterKind === 'gguf') return;
  const useGguf = 'Export the GGUF adapter for Ollama instead';
  if (opts.architecture !== 'llama') {
    throw new AdapterExportError(
      `Ollama converts safetensors (PEFT) adapters only for llama-architecture bases, and this base is ${opts.architecture}. ${useGguf}.`,
    );
  }
  if (opts.lora.useRslora) {
    throw new AdapterExportError(
      'This adapter uses rsLoRA (scale alpha / sqrt(r)), ' +
        'but Ollama ignores use_rslora in adapter_config.json and would scale by alpha / r. ' +
        `${useGguf}: it stores alpha so that llama.cpp's alpha / r equals alpha / sqrt(r).`,
    );
  }
  if (!Number.isInteger(opts.lora.alpha)) {
    throw new AdapterExportError(
      `lora_alpha is ${opts.lora.alpha}, but Ollama reads lora_alpha from adapter_config.json as a whole number and refuses a fraction. ` +
        `${useGguf} (it stores alpha as a float), or train with a whole-number alpha (for example 2 × r).`,
    );
  }
}

/** What to check when giving Ollama an adapter that checkOllamaAdapter accepts, one sentence each. */
export function ollamaAdapterNotes(opts: {
  architecture: ModelConfig['architecture'];
  adapterKind: OllamaAdapterKind;
  baseModel: string;
  lora: Pick<LoraConfig, 'alpha'>;
}): string[] {
  const kindNotes =
    opts.adapterKind === 'peft'
      ? [
          'ADAPTER names the folder, not the .safetensors file inside it; Ollama converts it while creating the model.',
          'Ollama converts safetensors adapters only for llama-architecture bases (Llama, SmolLM2, TinyLlama); ' +
            'for a Qwen2 base use the GGUF adapter.',
          `Ollama reads lora_alpha as a whole number; this adapter's alpha (${opts.lora.alpha}) is one.`,
        ]
      : [
          'ADAPTER names the .gguf file; Ollama hands it to llama.cpp unchanged, so it works for llama and Qwen2 bases alike.',
          ...(opts.architecture === 'llama'
            ? []
            : [
                'Ollama converts safetensors adapters only for llama-architecture bases, ' +
                  'so for this Qwen2 base the GGUF adapter is the one to use.',
              ]),
        ];
  return [
    `FROM (${opts.baseModel}) must be the model the adapter was trained on: same size and same variant (base or Instruct). ` +
      'On another model the adapter is refused or produces nonsense.',
    ...kindNotes,
  ];
}

/** A Modelfile for a whole model folder (a merged export); Ollama converts its safetensors itself. */
export function ollamaModelModelfile(modelPath: string): string {
  if (/[\r\n]/.test(modelPath) || modelPath.trim() === '') {
    throw new AdapterExportError(`The Modelfile FROM ${JSON.stringify(modelPath)} must be one non-empty line.`);
  }
  return `FROM ${modelPath}\n`;
}

/** How to run an export with Ollama: the same shape for the page and the CLI. */
export interface OllamaSetup {
  /** The Modelfile to save where the commands run; null when Ollama cannot take this export. */
  modelfile: string | null;
  /** Shell commands to run, in order, in the folder holding the export and the Modelfile. */
  commands: string[];
  /** What to check, and why Ollama cannot take the export when `modelfile` is null. */
  notes: string[];
}

/** The Modelfile and commands for an adapter export, or why Ollama would refuse or misapply it. */
export function ollamaAdapterSetup(opts: {
  architecture: ModelConfig['architecture'];
  adapterKind: OllamaAdapterKind;
  baseModel: string;
  lora: Pick<LoraConfig, 'alpha' | 'useRslora'>;
  /** What ADAPTER names, relative to the Modelfile. */
  adapterPath: string;
  commands: string[];
}): OllamaSetup {
  try {
    checkOllamaAdapter(opts);
  } catch (error) {
    if (error instanceof AdapterExportError) return { modelfile: null, commands: [], notes: [error.message] };
    throw error;
  }
  return {
    modelfile: ollamaModelfile({ base: opts.baseModel, adapterPath: opts.adapterPath }),
    commands: opts.commands,
    notes: ollamaAdapterNotes(opts),
  };
}

/** `ollama create` then `ollama run` under one model name. */
export function ollamaRunCommands(model: string): string[] {
  return [`ollama create ${model} -f Modelfile`, `ollama run ${model}`];
}

/** The setup as text for a terminal: the Modelfile, the commands and the notes. */
export function ollamaSetupText(setup: OllamaSetup): string {
  if (!setup.modelfile) return ['Ollama cannot take this export:', ...setup.notes.map((n) => `- ${n}`), ''].join('\n');
  return [
    'Ollama: the Modelfile written with the export is',
    '',
    setup.modelfile,
    'In its folder, run:',
    '',
    ...setup.commands,
    '',
    'Notes:',
    ...setup.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

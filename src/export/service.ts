/**
 * Every export of an adapter, for the page and the CLI alike: a PEFT folder, a GGUF LoRA, or the
 * base with the adapter merged in, each with the Modelfile and commands that load it in Ollama (or
 * the reason Ollama cannot). The page takes it as one download (`target: 'download'`, the Modelfile
 * saved beside it); the CLI as the files of its output folder, Modelfile included (`target: 'folder'`).
 */
import type { AdapterTensors } from './adapter';
import { AdapterExportError } from './errors';
import { ggufAdapterFile } from './gguf';
import { mergedModelFiles } from './merge';
import { type OllamaSetup, ollamaAdapterSetup, ollamaModelModelfile, ollamaRunCommands } from './modelfile';
import { peftAdapterFiles } from './peft';
import { zipFiles } from './zip';
import type { ModelConfig } from '../model/config';
import type { FileSource } from '../model/file-source';

export type { OllamaSetup };

/** What an exported adapter is loaded with: a PEFT folder, a GGUF LoRA, or the base with the adapter merged in. */
export type ExportFormat = 'peft' | 'gguf' | 'merged';

/** The base model the adapter was checked against: GGUF needs its config, merging its files. */
export interface ExportBase {
  config: ModelConfig;
  source: FileSource;
}

export interface ExportOptions {
  format: ExportFormat;
  /** Names the files and the Ollama model (made safe with exportName). */
  name: string;
  /** base_model_name_or_path of a PEFT export. */
  peftBaseModel: string;
  /** What the Modelfile's FROM names: the Ollama model or path of the exact base. */
  ollamaBase: string;
  /** Merged models only: each tensor in the base's own dtype, or all in f32. Default 'same'. */
  dtype?: 'same' | 'f32';
  target: 'download' | 'folder';
}

/** One file to download. */
export interface AdapterDownload {
  fileName: string;
  mimeType: string;
  bytes: Uint8Array;
  ollama: OllamaSetup;
}

export interface ExportFile {
  path: string;
  bytes: Uint8Array;
}

/** The files of an output folder, paths relative to it, the Modelfile among them when Ollama can take the export. */
export interface AdapterFolder {
  files: AsyncIterable<ExportFile>;
  ollama: OllamaSetup;
}

/** A name safe in file names, shell commands and Ollama model names (lowercase letters, digits, . _ -). */
export function exportName(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[-.]+|-+$/g, '') || 'adapter'
  );
}

export async function exportAdapter(
  adapter: AdapterTensors,
  base: ExportBase,
  opts: ExportOptions & { target: 'download' },
): Promise<AdapterDownload>;
export async function exportAdapter(
  adapter: AdapterTensors,
  base: ExportBase,
  opts: ExportOptions & { target: 'folder' },
): Promise<AdapterFolder>;
export async function exportAdapter(
  adapter: AdapterTensors,
  base: ExportBase,
  opts: ExportOptions,
): Promise<AdapterDownload | AdapterFolder> {
  const name = exportName(opts.name);
  const toFolder = opts.target === 'folder';
  const adapterSetup = (adapterKind: 'peft' | 'gguf', adapterPath: string, commands: string[]) =>
    ollamaAdapterSetup({
      architecture: base.config.architecture,
      adapterKind,
      baseModel: opts.ollamaBase,
      lora: adapter.config,
      adapterPath,
      commands,
    });
  switch (opts.format) {
    case 'peft': {
      const files = peftAdapterFiles(adapter, { baseModel: opts.peftBaseModel });
      if (toFolder) return folder(entries(files), adapterSetup('peft', '.', ollamaRunCommands(name)));
      return {
        fileName: `${name}.zip`,
        mimeType: 'application/zip',
        bytes: zipFiles(files),
        ollama: adapterSetup('peft', `./${name}`, [`unzip ${name}.zip -d ${name}`, ...ollamaRunCommands(name)]),
      };
    }
    case 'gguf': {
      const fileName = `${name}.gguf`;
      const bytes = ggufAdapterFile(adapter, base.config, { name: opts.name });
      const ollama = adapterSetup('gguf', `./${fileName}`, ollamaRunCommands(name));
      if (toFolder) return folder(entries({ [fileName]: bytes }), ollama);
      return { fileName, mimeType: 'application/octet-stream', bytes, ollama };
    }
    case 'merged': {
      const files = mergedModelFiles(base.source, adapter, { dtype: opts.dtype ?? 'same' });
      const modelName = toFolder ? name : `${name}-merged`;
      const notes = [
        `${modelName} is a Hugging Face model folder with the adapter merged into the weights: ` +
          "transformers, vLLM and llama.cpp's convert_hf_to_gguf.py load it without PEFT.",
        'Ollama converts the safetensors weights while creating the model; no ADAPTER line is needed.',
      ];
      if (toFolder) return folder(files, { modelfile: ollamaModelModelfile('.'), commands: ollamaRunCommands(name), notes });
      const zipped: Record<string, Uint8Array> = {};
      for await (const file of files) zipped[`${modelName}/${file.path}`] = file.bytes;
      return {
        fileName: `${modelName}.zip`,
        mimeType: 'application/zip',
        bytes: zipFiles(zipped, { store: true }),
        ollama: {
          modelfile: ollamaModelModelfile(`./${modelName}`),
          commands: [`unzip ${modelName}.zip`, ...ollamaRunCommands(modelName)],
          notes,
        },
      };
    }
    default:
      throw new AdapterExportError(`Unknown export format ${JSON.stringify(opts.format)}; choose peft, gguf or merged.`);
  }
}

async function* entries(files: Record<string, Uint8Array>): AsyncIterable<ExportFile> {
  for (const [path, bytes] of Object.entries(files)) yield { path, bytes };
}

/** The folder's files followed by its Modelfile, when Ollama can take the export. */
function folder(files: AsyncIterable<ExportFile>, ollama: OllamaSetup): AdapterFolder {
  async function* withModelfile(): AsyncIterable<ExportFile> {
    yield* files;
    if (ollama.modelfile) yield { path: 'Modelfile', bytes: new TextEncoder().encode(ollama.modelfile) };
  }
  return { files: withModelfile(), ollama };
}

/**
 * Every export of an adapter, for the page and the CLI alike: a PEFT folder, a GGUF LoRA, or the
 * base with the adapter merged in (a Hugging Face folder, or one GGUF file), each with the Modelfile
 * and commands that load it in Ollama (or the reason Ollama cannot). The page takes it as one
 * download (`target: 'download'`, the Modelfile saved beside it); the CLI as the files of its output
 * folder, Modelfile included (`target: 'folder'`).
 */
import type { GgufFile } from '../gguf/file';
import type { ModelConfig } from '../model/config';
import type { FileSource } from '../model/file-source';
import type { ModelWeightsSource } from '../model/weights';
import type { AdapterTensors } from './adapter';
import { AdapterExportError } from './errors';
import { ggufAdapterFile } from './gguf';
import { mergedModelFiles } from './merge';
import { mergedGgufParts, type MergedGgufType } from './merged-gguf';
import { type OllamaSetup, ollamaAdapterSetup, ollamaModelModelfile, ollamaRunCommands } from './modelfile';
import { peftAdapterFiles } from './peft';
import { zipFiles } from './zip';

export type { MergedGgufType, OllamaSetup };

/**
 * What an exported adapter is loaded with: a PEFT folder, a GGUF LoRA, the base with the adapter
 * merged in as a Hugging Face folder (`merged`) or as one GGUF file (`merged-gguf`).
 */
export type ExportFormat = 'peft' | 'gguf' | 'merged' | 'merged-gguf';

/** The base model the adapter was checked against, as loaded (model/weights.ts OpenedModel, plus its files). */
export interface ExportBase {
  config: ModelConfig;
  weights: Pick<ModelWeightsSource, 'tensor'>;
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  /** The Hugging Face folder, whose files a merged folder copies; null for a GGUF base. */
  source: FileSource | null;
  /** The GGUF file of a GGUF base: its tensor names and tokenizer metadata. */
  ggufFile?: GgufFile;
}

export interface ExportOptions {
  format: ExportFormat;
  /** Names the files and the Ollama model (made safe with exportName). */
  name: string;
  /** base_model_name_or_path of a PEFT export. */
  peftBaseModel: string;
  /** What the Modelfile's FROM names: the Ollama model or path of the exact base. */
  ollamaBase: string;
  /** Merged folders only: each tensor in the base's own dtype, or all in f32. Default 'same'. */
  dtype?: 'same' | 'f32';
  /** Merged GGUF only: the type of its matrices. Default 'F16'. */
  ggufType?: MergedGgufType;
  target: 'download' | 'folder';
}

/** One file to download; a merged GGUF comes as a Blob of its parts rather than one array. */
export interface AdapterDownload {
  fileName: string;
  mimeType: string;
  bytes: Uint8Array | Blob;
  ollama: OllamaSetup;
}

/** A file of an output folder: its bytes, or (a merged GGUF) its parts in order, produced as they are written. */
export type ExportFile = { path: string; bytes: Uint8Array } | { path: string; parts: AsyncIterable<Uint8Array> };

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
      const bytes = ggufAdapterFile(adapter, base.config, { name: opts.name, base: base.ggufFile });
      const ollama = adapterSetup('gguf', `./${fileName}`, ollamaRunCommands(name));
      if (toFolder) return folder(entries({ [fileName]: bytes }), ollama);
      return { fileName, mimeType: 'application/octet-stream', bytes, ollama };
    }
    case 'merged': {
      if (!base.source) {
        throw new AdapterExportError(
          'This base is a GGUF file, not a Hugging Face folder, so there is no folder to merge into: export the merged model as GGUF.',
        );
      }
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
    case 'merged-gguf':
      return mergedGguf(adapter, base, opts, name);
    default:
      throw new AdapterExportError(`Unknown export format ${JSON.stringify(opts.format)}; choose peft, gguf, merged or merged-gguf.`);
  }
}

/** The merged model as one GGUF file, which Ollama takes as it is (`FROM ./file.gguf`). */
async function mergedGguf(
  adapter: AdapterTensors,
  base: ExportBase,
  opts: ExportOptions,
  name: string,
): Promise<AdapterDownload | AdapterFolder> {
  const type = opts.ggufType ?? 'F16';
  const parts = mergedGgufParts(adapter, base, { type, name: `${opts.name} (merged)` });
  const fileName = opts.target === 'folder' ? `${name}.gguf` : `${name}-merged.gguf`;
  const modelName = opts.target === 'folder' ? name : `${name}-merged`;
  const ollama: OllamaSetup = {
    modelfile: ollamaModelModelfile(`./${fileName}`),
    commands: ollamaRunCommands(modelName),
    notes: [
      `${fileName} is the whole model (${type} matrices) with the adapter merged into its weights: ` +
        `Ollama and llama.cpp (llama-cli -m ${fileName}) load it as it is, with no ADAPTER line.`,
      "Ollama picks the chat TEMPLATE from the file's tokenizer.chat_template when it recognises it; otherwise copy the " +
        'TEMPLATE and PARAMETER lines of the base (ollama show --modelfile <base>) into this Modelfile.',
    ],
  };
  if (opts.target === 'folder') return folder(single({ path: fileName, parts }), ollama);
  const list: Uint8Array<ArrayBuffer>[] = [];
  for await (const part of parts) list.push(part as Uint8Array<ArrayBuffer>);
  return { fileName, mimeType: 'application/octet-stream', bytes: new Blob(list), ollama };
}

async function* single(file: ExportFile): AsyncIterable<ExportFile> {
  yield file;
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

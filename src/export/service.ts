/**
 * The page's downloads of a library adapter: a PEFT zip, a GGUF LoRA or the merged model as a zip,
 * each with the Modelfile and commands that load it in Ollama, or the reason Ollama cannot.
 */
import type { AdapterTensors } from './adapter';
import { AdapterExportError } from './errors';
import { ggufAdapterFile } from './gguf';
import { mergedModelFiles } from './merge';
import { checkOllamaAdapter, ollamaAdapterNotes, ollamaModelfile, ollamaModelModelfile } from './modelfile';
import { peftAdapterFiles } from './peft';
import { zipFiles } from './zip';
import type { ModelConfig } from '../model/config';
import type { FileSource } from '../model/file-source';
import type { AdapterRecord } from '../storage/db';
import type { AdapterExport, ExportRequest, OllamaSetup } from '../app/api';

/** The base model the adapter was checked against, loaded now: GGUF needs its config, merging its files. */
export interface ExportBase {
  config: ModelConfig;
  source: FileSource;
}

/** A name safe in file names, shell commands and Ollama model names (lowercase letters, digits, . _ -). */
export function exportName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '') || 'adapter';
}

/** base_model_name_or_path for a PEFT export: what the training tool wrote for an imported adapter, else the base's name here. */
export function peftBaseModel(record: Pick<AdapterRecord, 'baseModel' | 'imported'>): string {
  return record.imported?.declaredBaseModel ?? record.baseModel;
}

const ollamaRun = (model: string) => [`ollama create ${model} -f Modelfile`, `ollama run ${model}`];

export async function exportAdapter(record: AdapterRecord, base: ExportBase, request: ExportRequest): Promise<AdapterExport> {
  const adapter: AdapterTensors = {
    config: record.config,
    tensors: new Map(record.tensors.map((t) => [t.name, { shape: t.shape, data: t.data }])),
  };
  const name = exportName(record.name);
  const ollamaBase = request.ollamaBase?.trim() || record.baseModel;
  const { architecture } = base.config;
  switch (request.format) {
    case 'peft': {
      const bytes = zipFiles(peftAdapterFiles(adapter, { baseModel: peftBaseModel(record) }));
      return {
        fileName: `${name}.zip`,
        mimeType: 'application/zip',
        bytes,
        ollama: adapterSetup(
          { architecture, adapterKind: 'peft', baseModel: ollamaBase, lora: record.config },
          `./${name}`,
          [`unzip ${name}.zip -d ${name}`, ...ollamaRun(name)],
        ),
      };
    }
    case 'gguf': {
      const fileName = `${name}.gguf`;
      return {
        fileName,
        mimeType: 'application/octet-stream',
        bytes: ggufAdapterFile(adapter, base.config, { name: record.name }),
        ollama: adapterSetup({ architecture, adapterKind: 'gguf', baseModel: ollamaBase, lora: record.config }, `./${fileName}`, ollamaRun(name)),
      };
    }
    case 'merged': {
      const folder = `${name}-merged`;
      const files: Record<string, Uint8Array> = {};
      for await (const file of mergedModelFiles(base.source, adapter, { dtype: request.dtype ?? 'same' })) files[`${folder}/${file.path}`] = file.bytes;
      return {
        fileName: `${folder}.zip`,
        mimeType: 'application/zip',
        bytes: zipFiles(files, { store: true }),
        ollama: {
          modelfile: ollamaModelModelfile(`./${folder}`),
          commands: [`unzip ${folder}.zip`, ...ollamaRun(folder)],
          notes: [
            `${folder} is a Hugging Face model folder with the adapter merged into the weights: transformers, vLLM and llama.cpp's convert_hf_to_gguf.py load it without PEFT.`,
            'Ollama converts the safetensors weights while creating the model; no ADAPTER line is needed.',
          ],
        },
      };
    }
    default:
      throw new AdapterExportError(`Unknown export format ${JSON.stringify(request.format)}; choose peft, gguf or merged.`);
  }
}

/** The Modelfile and commands for an adapter export, or why Ollama would refuse or misapply it. */
function adapterSetup(opts: Parameters<typeof checkOllamaAdapter>[0] & { baseModel: string }, adapterPath: string, commands: string[]): OllamaSetup {
  try {
    checkOllamaAdapter(opts);
  } catch (error) {
    if (error instanceof AdapterExportError) return { modelfile: null, commands: [], notes: [error.message] };
    throw error;
  }
  return {
    modelfile: ollamaModelfile({ base: opts.baseModel, adapterPath }),
    commands,
    notes: ollamaAdapterNotes(opts),
  };
}

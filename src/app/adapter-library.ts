/**
 * Adapters coming into the library from outside: a PEFT folder's picked files or a zip of it, as
 * webtune or Python PEFT writes them, checked against the loaded model before anything is stored.
 */
import { AdapterImportError } from '../export/errors';
import { ADAPTER_CONFIG_FILE, readPeftAdapter } from '../export/peft';
import { unzipBlob } from '../export/zip';
import type { AdapterTensors } from '../export/adapter';
import type { ModelConfig } from '../model/config';
import { type FileSource, filesFromList, normalizePath } from '../model/file-source';
import type { AdapterRecord } from '../storage/db';
import type { ModelFileEntry } from './api';

export interface AdapterUpload {
  adapter: AdapterTensors;
  /** The zip or folder name, for the default adapter name and the record's provenance. */
  label: string;
  declaredBaseModel: string | null;
}

const isZipName = (name: string) => /\.zip$/i.test(name);

/** A File keeps its name across postMessage; a bare Blob has none. */
const blobName = (blob: Blob) => (typeof File !== 'undefined' && blob instanceof File ? blob.name : 'the zip file');

async function uploadSource(source: ModelFileEntry[] | Blob): Promise<{ files: FileSource; label: string }> {
  // A zip picked in a multi-file chooser arrives as a one-entry list.
  if (Array.isArray(source) && source.length === 1 && isZipName(source[0].path)) {
    const name = normalizePath(source[0].path).split('/').pop()!;
    return { files: await unzipBlob(source[0].file, name), label: name };
  }
  if (!Array.isArray(source)) {
    const name = blobName(source);
    return { files: await unzipBlob(source, name), label: name };
  }
  if (source.length === 0) {
    throw new AdapterImportError(`No files were chosen: pick the adapter folder (with ${ADAPTER_CONFIG_FILE}) or a zip of it.`);
  }
  const paths = source.map((f) => normalizePath(f.path));
  const roots = new Set(paths.map((p) => (p.includes('/') ? p.slice(0, p.indexOf('/')) : '')));
  const [root] = roots;
  const label = roots.size === 1 && root ? root : 'the chosen files';
  return { files: filesFromList(new Map(source.map((f, i) => [paths[i], f.file])), label), label };
}

/** Reads and validates an upload; throws AdapterImportError saying what is wrong when it does not fit `model`. */
export async function readAdapterUpload(source: ModelFileEntry[] | Blob, model: ModelConfig): Promise<AdapterUpload> {
  const { files, label } = await uploadSource(source);
  const adapter = await readPeftAdapter(files, model);
  // readPeftAdapter has parsed this JSON already, so it is an object.
  const config = JSON.parse(new TextDecoder().decode(await files.read(ADAPTER_CONFIG_FILE))) as Record<string, unknown>;
  const declared = config.base_model_name_or_path;
  return { adapter, label, declaredBaseModel: typeof declared === 'string' && declared ? declared : null };
}

/** The library record of an imported adapter: usable with `baseModel`, the model it was checked against. */
export function importedAdapterRecord(
  upload: AdapterUpload,
  opts: { id: string; name: string | undefined; baseModel: string; createdAt: number },
): AdapterRecord {
  const { adapter, label, declaredBaseModel } = upload;
  return {
    id: opts.id,
    name: opts.name?.trim() || label.replace(/\.zip$/i, ''),
    createdAt: opts.createdAt,
    imported: { from: label, declaredBaseModel },
    runId: null,
    baseModel: opts.baseModel,
    datasetName: '',
    settings: { lora: adapter.config, training: {} },
    finalTrainLoss: null,
    finalEvalLoss: null,
    config: adapter.config,
    tensors: [...adapter.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
  };
}

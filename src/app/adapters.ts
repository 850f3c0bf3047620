/**
 * The adapter library: trained and imported adapters in IndexedDB, their import (checked against
 * the loaded model) and export (through the export service), and the one stored adapter kept on
 * the GPU for generation and evaluation (inference only: no gradient or optimizer buffers).
 */
import type { AdapterTensors } from '../export/adapter';
import { peftAdapterFiles } from '../export/peft';
import { MERGED_GGUF_TYPES } from '../export/merged-gguf';
import { exportAdapter } from '../export/service';
import { zipFiles } from '../export/zip';
import { LoraWeights } from '../lora/adapter';
import { newId, type AdapterRecord, type AdapterSummary, type WebtuneDb } from '../storage/db';
import type { AdapterExport, ExportRequest, ModelFileEntry } from './api';
import { importedAdapterRecord, readAdapterUpload } from './adapter-library';
import type { DeviceSession } from './device';
import { EngineStateError } from './errors';
import type { LoadedModel, ModelSession } from './models';

/** A stored adapter's tensors in the form the export and training code take. */
export function adapterTensors(record: Pick<AdapterRecord, 'config' | 'tensors'>): AdapterTensors {
  return { config: record.config, tensors: new Map(record.tensors.map((t) => [t.name, { shape: t.shape, data: t.data }])) };
}

/** base_model_name_or_path for a PEFT export: what the training tool wrote for an imported adapter, else the base's name here. */
export function peftBaseModel(record: Pick<AdapterRecord, 'baseModel' | 'imported'>): string {
  return record.imported?.declaredBaseModel ?? record.baseModel;
}

/**
 * What a Modelfile's FROM names when the user gives nothing: the base's name, which is the Ollama model's
 * for a model loaded from Ollama's store; a GGUF file picked on its own is named by its path.
 */
export function defaultOllamaBase(baseModel: string): string {
  return baseModel.endsWith('.gguf') ? `./${baseModel}` : baseModel;
}

export class AdapterLibrary {
  #onGpu: { id: string; adapter: LoraWeights } | null = null;

  constructor(
    private readonly storage: () => Promise<WebtuneDb>,
    private readonly device: DeviceSession,
    private readonly models: ModelSession,
  ) {
    models.onRelease(() => this.#dropGpuCopy());
    // The old device's buffers are gone with it.
    device.onReplaced(() => {
      this.#onGpu = null;
    });
  }

  async list(): Promise<AdapterSummary[]> {
    return (await this.storage()).listAdapters();
  }

  async rename(id: string, name: string): Promise<void> {
    if (!name.trim()) throw new EngineStateError('An adapter needs a name.');
    await (await this.storage()).renameAdapter(id, name.trim());
  }

  async delete(id: string): Promise<void> {
    await (await this.storage()).deleteAdapter(id);
    if (this.#onGpu?.id === id) this.#dropGpuCopy();
  }

  async save(record: AdapterRecord): Promise<void> {
    await (await this.storage()).saveAdapter(record);
  }

  /** The adapter as a PEFT folder in a zip; needs no loaded model. */
  async exportZip(id: string): Promise<Uint8Array> {
    const record = await (await this.storage()).getAdapter(id);
    return zipFiles(peftAdapterFiles(adapterTensors(record), { baseModel: peftBaseModel(record) }));
  }

  async import(source: ModelFileEntry[] | Blob, name?: string): Promise<AdapterSummary> {
    const model = this.models.loaded;
    if (!model) {
      throw new EngineStateError('Load the base model first: an imported adapter is checked against the loaded model, tensor by tensor.');
    }
    const upload = await readAdapterUpload(source, model.opened.config);
    const record = importedAdapterRecord(upload, { id: newId('adapter'), name, baseModel: model.info.name, createdAt: Date.now() });
    await this.save(record);
    const { tensors: _, ...summary } = record;
    return summary;
  }

  async export(request: ExportRequest): Promise<AdapterExport> {
    if (request.dtype !== undefined && request.dtype !== 'same' && request.dtype !== 'f32') {
      throw new EngineStateError(`The merged dtype must be "same" (as the base) or "f32", got ${JSON.stringify(request.dtype)}.`);
    }
    if (request.ggufType !== undefined && !MERGED_GGUF_TYPES.includes(request.ggufType)) {
      throw new EngineStateError(`A merged GGUF is ${MERGED_GGUF_TYPES.join(', ')}, not ${JSON.stringify(request.ggufType)}.`);
    }
    const record = await (await this.storage()).getAdapter(request.adapterId);
    const model = this.models.loaded;
    if (!model || model.info.name !== record.baseModel) {
      throw new EngineStateError(
        `Load ${record.baseModel}, the base model of "${record.name}", to export it: the export is checked against the base ` +
          `(now loaded: ${model?.info.name ?? 'no model'}).`,
      );
    }
    return exportAdapter(
      adapterTensors(record),
      { ...model.opened, source: model.source, ggufFile: model.opened.gguf?.file },
      {
        format: request.format,
        name: record.name,
        peftBaseModel: peftBaseModel(record),
        ollamaBase: request.ollamaBase?.trim() || defaultOllamaBase(record.baseModel),
        dtype: request.dtype,
        ggufType: request.ggufType,
        target: 'download',
      },
    );
  }

  /** A stored adapter, refused unless it was trained on (or imported for) `model`. */
  async recordFor(id: string, model: LoadedModel): Promise<AdapterRecord> {
    const record = await (await this.storage()).getAdapter(id);
    if (record.baseModel !== model.info.name) {
      throw new EngineStateError(`The adapter "${record.name}" was trained on ${record.baseModel}; load that model to use it.`);
    }
    return record;
  }

  /** A stored adapter on the GPU for inference; the latest one asked for stays there for the next call. */
  async onGpu(id: string, model: LoadedModel): Promise<LoraWeights> {
    if (this.#onGpu?.id === id) return this.#onGpu.adapter;
    const record = await this.recordFor(id, model);
    const { config, tensors } = adapterTensors(record);
    const adapter = LoraWeights.fromTensors(await this.device.gpu(), model.opened.config, config, tensors, record.name);
    this.#dropGpuCopy();
    this.#onGpu = { id, adapter };
    return adapter;
  }

  #dropGpuCopy(): void {
    this.#onGpu?.adapter.destroy();
    this.#onGpu = null;
  }
}

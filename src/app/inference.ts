/** Generation and evaluation with the loaded model, alone or with a stored adapter. */
import { evaluate, type EvaluationProgress, type EvaluationReport } from '../eval/evaluate';
import { generate } from '../eval/generate';
import type { WebtuneDb } from '../storage/db';
import type { AdapterLibrary } from './adapters';
import type { EvaluateRequest, GenerateRequest, GenerateResult } from './api';
import { EngineStateError } from './errors';
import type { ModelSession } from './models';

export class InferenceService {
  constructor(
    private readonly storage: () => Promise<WebtuneDb>,
    private readonly models: ModelSession,
    private readonly adapters: AdapterLibrary,
  ) {}

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const model = this.models.current();
    const llama = await this.models.llama();
    const scale = request.adapterScale ?? 1;
    if (!Number.isFinite(scale)) throw new EngineStateError(`The adapter scale must be a number (1: as trained, 0: off), got ${scale}.`);
    const stored = request.adapterId ? await this.adapters.onGpu(request.adapterId, model) : null;
    // Scale 0 skips the adapter's work altogether; any other scale is a view on the cached weights.
    const adapter = !stored || scale === 0 ? null : scale === 1 ? stored : stored.scaledBy(scale);
    const started = performance.now();
    const result = await generate(llama, model.prep.tokenizer, adapter, request.prompt, {
      maxNewTokens: request.maxNewTokens,
      temperature: request.temperature,
    });
    return { text: result.text, tokens: result.ids.length, ms: performance.now() - started };
  }

  async evaluate(request: EvaluateRequest, onProgress?: (progress: EvaluationProgress) => void): Promise<EvaluationReport> {
    const model = this.models.current();
    const llama = await this.models.llama();
    const dataset = await (await this.storage()).getDataset(request.datasetId);
    const record = request.adapterId ? await this.adapters.recordFor(request.adapterId, model) : null;
    const adapter = request.adapterId ? await this.adapters.onGpu(request.adapterId, model) : null;
    // Both models are scored on sequences cut where the adapter's training cut them.
    const maxLength = record?.settings.training.maxLength;
    return evaluate(llama, model.prep, adapter, dataset.rows, {
      maxNewTokens: request.maxNewTokens,
      temperature: request.temperature,
      adapterLabel: record?.name,
      ...(typeof maxLength === 'number' ? { maxLength } : {}),
      onProgress,
    });
  }
}

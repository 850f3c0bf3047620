import { vi } from 'vitest';
import { validateLoraConfig } from '../../src/lora/config';
import type {
  AdapterRecord,
  ChatTurnSettings,
  CheckpointRecord,
  ConversationRecord,
  DatasetRecord,
  DocumentRecord,
  ModelFileRecord,
  RunRecord,
  RunSettings,
} from '../../src/storage/db';
import { openWebtuneDb, type WebtuneDb } from '../../src/storage/db';

let counter = 0;

const opened: WebtuneDb[] = [];

/** Opens a test database that closeTestDbs() closes, so no connection outlives its test. */
export async function openTestDb(name: string): Promise<WebtuneDb> {
  const db = await openWebtuneDb(name);
  opened.push(db);
  return db;
}

/** Closes every database openTestDb opened; for afterEach. */
export function closeTestDbs(): void {
  for (const db of opened.splice(0)) db.close();
}

/** Each test gets its own database, so tests never see each other's records. */
export function freshDbName(): string {
  counter += 1;
  return `webtune-test-${counter}-${Math.random().toString(36).slice(2)}`;
}

export const settings: RunSettings = {
  lora: validateLoraConfig({ r: 4, targets: ['q_proj', 'v_proj'] }),
  training: { learningRate: 2e-4, epochs: 1, packing: false, warmupSteps: null, scheduler: 'cosine' },
};

export function dataset(overrides: Partial<DatasetRecord> = {}): DatasetRecord {
  return {
    id: 'ds-1',
    name: 'support chats',
    createdAt: 1_000,
    format: 'messages',
    rowCount: 3,
    rows: [
      {
        kind: 'chat',
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
      },
      { kind: 'completion', prompt: '2+2=', completion: '4' },
      { kind: 'text', text: 'plain text row' },
    ],
    invalidLineCount: 1,
    sourceFileName: 'chats.jsonl',
    ...overrides,
  };
}

export function run(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 'run-1',
    createdAt: 2_000,
    updatedAt: 2_000,
    name: 'first run',
    model: { id: 'HuggingFaceTB/SmolLM2-135M-Instruct', source: 'hub', architecture: 'llama', parameterCount: 134_515_008 },
    datasetId: 'ds-1',
    evalDatasetId: null,
    settings,
    status: 'created',
    error: null,
    totalSteps: 100,
    step: 0,
    history: [],
    lastCheckpointStep: null,
    ...overrides,
  };
}

export function checkpoint(runId: string, step: number): CheckpointRecord {
  const values = (offset: number) => Float32Array.from({ length: 6 }, (_, i) => step + offset + i / 8);
  return {
    runId,
    step,
    createdAt: 3_000 + step,
    params: values(0),
    m: values(0.5),
    v: values(0.25),
    optimizerStep: step,
    dataCursor: { epoch: 0, batchIndex: step, order: [2, 0, 1] },
    rngSeed: 42,
  };
}

export function adapter(overrides: Partial<AdapterRecord> = {}): AdapterRecord {
  return {
    id: 'ad-1',
    name: 'support adapter',
    createdAt: 4_000,
    runId: 'run-1',
    baseModel: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    datasetName: 'support chats',
    settings,
    finalTrainLoss: 1.25,
    finalEvalLoss: null,
    config: settings.lora,
    tensors: [
      { name: 'layers.0.q_proj.lora_A', shape: [4, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) },
      { name: 'layers.0.q_proj.lora_B', shape: [2, 4], data: Float32Array.from([-0.5, 0.25, 0, 1e-8, 3, 2, 1, 0]) },
    ],
    ...overrides,
  };
}

export function modelFile(modelId: string, path: string, content: string): ModelFileRecord {
  const blob = new Blob([content]);
  return { modelId, path, revision: 'main', size: blob.size, blob };
}

/**
 * Makes the next `put` into `storeName` throw the DOMException a browser raises when storage is
 * full, as if the disk filled up in the middle of a transaction.
 */
export function failNextPut(storeName: string): void {
  const original = IDBObjectStore.prototype.put;
  const spy = vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (
    this: IDBObjectStore,
    ...args: Parameters<IDBObjectStore['put']>
  ) {
    if (this.name !== storeName) return original.apply(this, args);
    spy.mockRestore();
    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
  });
}

export function conversation(overrides: Partial<ConversationRecord> = {}): ConversationRecord {
  const settings: ChatTurnSettings = {
    adapterId: null,
    adapterScale: 1,
    temperature: 0,
    topP: 1,
    maxNewTokens: 32,
    systemPrompt: '',
    useDocuments: true,
    topK: 3,
    sideBySide: false,
  };
  return {
    id: 'conv-1',
    title: 'How long do refunds take?',
    createdAt: 6_000,
    updatedAt: 6_000,
    model: 'stories260K',
    turns: [
      {
        id: 'turn-1',
        createdAt: 6_000,
        user: 'How long do refunds take?',
        system: 'Context:\n[1] (faq.md) Refunds take 5 days.',
        sources: [{ id: 1, label: 'faq.md', text: 'Refunds take 5 days.', passageId: 'faq.md#0', document: 'faq.md', score: 2.5 }],
        prompt: '<s>System: Context:\n[1] (faq.md) Refunds take 5 days.\n\nUser: How long do refunds take?\n\nAssistant:',
        settings,
        replies: [
          {
            id: 'reply-1',
            createdAt: 6_100,
            adapterId: null,
            adapterName: null,
            adapterScale: 1,
            text: 'Five days [1].',
            tokens: 6,
            ms: 120,
            stopped: false,
            seed: 7,
            rating: null,
            correction: null,
            citations: { cited: [1], valid: [1], missing: [], uncited: [] },
          },
        ],
        chosen: 0,
      },
    ],
    ...overrides,
  };
}

export function documentRecord(name: string, overrides: Partial<DocumentRecord> = {}): DocumentRecord {
  return { name, format: 'markdown', addedAt: 7_000, chars: 120, passages: 1, ...overrides };
}

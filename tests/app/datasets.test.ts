import 'fake-indexeddb/auto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeDataset } from '../../src/analysis/analyze';
import { FILTER_RULES, filterDataset } from '../../src/analysis/filter';
import { builtinPresets, type Preset, PresetError } from '../../src/analysis/presets';
import { parseImportBytes } from '../../src/data/import';
import { parseJsonlBytes } from '../../src/data/jsonl';
import { createNodeDevice } from '../../src/gpu/node-device';
import { EngineStateError, WebtuneEngine } from '../../src/app/engine';
import { filteredRows, QualityFilterError } from '../../src/app/quality-filter';
import { REPO_ROOT, SHARED, STORIES_260K } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';

const DATA = join(SHARED, 'data');
const SAMPLE = readFileSync(join(DATA, 'chat_rag_sample.jsonl'));

const chatLine = (...turns: [string, string][]) => JSON.stringify({ messages: turns.map(([role, content]) => ({ role, content })) });

/** The sample plus rows each filter rule that can survive import removes: duplicates and out-of-bounds responses. */
function noisySample(): Uint8Array {
  const lines = SAMPLE.toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
  const second = JSON.parse(lines[1]) as { messages: { role: string; content: string }[] };
  const nearCopy = {
    messages: second.messages.map((m) => (m.role === 'assistant' ? { ...m, content: m.content.replace(/\.$/, '!') } : m)),
  };
  const extra = [
    lines[0],
    JSON.stringify(nearCopy),
    chatLine(['user', 'Is the API up?'], ['assistant', 'Yes.']),
    chatLine(['user', 'Tell me everything about billing.'], ['assistant', 'Billing works like this. '.repeat(60)]),
  ];
  return new TextEncoder().encode(`${[...lines, ...extra].join('\n')}\n`);
}

async function storedDataset(engine: WebtuneEngine, bytes: Uint8Array, fileName: string) {
  const preview = await engine.importDataset(fileName, new Blob([new Uint8Array(bytes)]), fileName);
  return { preview, dataset: await engine.commitDataset(preview.previewId) };
}

const multiTask = () => builtinPresets().find((p) => p.id === 'multi_task')!;

describe('datasets: import previews, analysis, presets and the quality filter', () => {
  it('previews an import without storing it, and stores only what is committed', async () => {
    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    const bytes = readFileSync(join(DATA, 'bad/mixed_errors.jsonl'));
    const preview = await engine.importDataset('mixed', new Blob([bytes]), 'mixed_errors.jsonl');
    expect(preview.validRows).toBe(2);
    expect(preview.errors.map((e) => e.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(await engine.listDatasets()).toEqual([]);
    await engine.discardDataset(preview.previewId);
    await expect(engine.commitDataset(preview.previewId)).rejects.toThrow(EngineStateError);
    expect(await engine.listDatasets()).toEqual([]);

    const garbage = await engine.importDataset(
      'garbage',
      new Blob([readFileSync(join(DATA, 'bad/binary_garbage.jsonl'))]),
      'binary_garbage.jsonl',
    );
    expect(garbage.validRows).toBe(0);
    await expect(engine.commitDataset(garbage.previewId)).rejects.toThrow(/no valid rows/);

    const again = await engine.importDataset('mixed', new Blob([bytes]), 'mixed_errors.jsonl');
    const stored = await engine.commitDataset(again.previewId, 'chats');
    expect(stored).toMatchObject({ name: 'chats', rowCount: 2, invalidLineCount: 6, sourceFileName: 'mixed_errors.jsonl' });
    expect((await engine.listDatasets()).map((d) => d.id)).toEqual([stored.id]);
  });

  it('analyses an import right away: Context: rows are rag_enhanced, and the stored dataset gets the same analysis', async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const { preview, dataset } = await storedDataset(engine, SAMPLE, 'chat_rag_sample.jsonl');
    const { analysis } = preview;
    const rows = parseJsonlBytes(new Uint8Array(SAMPLE)).rows;
    const withContext = rows.flatMap((row, i) =>
      row.kind === 'chat' && row.messages.some((m) => m.role === 'system' && /^Context:/m.test(m.content)) ? [i] : [],
    );
    expect(withContext.length).toBe(10);
    expect(analysis.ragIndices).toEqual(withContext);
    for (const i of withContext) expect(analysis.perConversation[i].signals.map((s) => s.id)).toContain('rag.context_block');
    expect(analysis.distribution).toMatchObject({
      rag_enhanced: { count: 10 },
      ai_ml_education: { count: 7 },
      technical_implementation: { count: 6 },
      conversational_chat: { count: 5 },
      code_generation: { count: 3 },
    });
    expect(analysis.recommendation).toMatchObject({ strategy: 'single', tasks: ['rag_enhanced'], presetIds: ['rag_enhanced'] });
    expect(analysis.avgResponseChars).toBeGreaterThan(0);
    expect(analysis).toEqual(analyzeDataset(rows));
    expect(await engine.analyzeDataset(dataset.id)).toEqual(analysis);
  });

  it('plans the recommended preset: its values, warmup capped to the short run with a note, the filter report', async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const { dataset } = await storedDataset(engine, SAMPLE, 'chat_rag_sample.jsonl');
    const preset = multiTask();
    expect(await engine.listPresets()).toEqual(builtinPresets());
    const plan = await engine.planPreset({ datasetId: dataset.id, evalDatasetId: null, preset, settings: { evalFraction: 0.1, seed: 7 } });
    expect(plan.settings).toMatchObject({
      lora: { r: 32, alpha: 64, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
      lr: 1.5e-4,
      epochs: 4,
      seed: 7,
    });
    // 31 rows, 3 held out, 28 in micro-batches of 4 = 7, accumulated 4 at a time = 2 steps per epoch, 8 in all.
    expect(plan.filter.keptRows).toBe(31);
    expect(plan.steps).toBe(8);
    expect(plan.settings.warmupSteps).toBe(0);
    expect(plan.warmupNote).toMatch(/warmup shortened from 150 to 0 steps/);
  });

  it('refuses an invalid edited preset, naming the field', async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const { dataset } = await storedDataset(engine, SAMPLE, 'chat_rag_sample.jsonl');
    const preset = multiTask();
    const plan = (edited: Preset) => engine.planPreset({ datasetId: dataset.id, evalDatasetId: null, preset: edited, settings: {} });
    const refusal = async (edited: Preset) => {
      const error = await plan(edited).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(PresetError);
      return error as PresetError;
    };
    const rank = await refusal({ ...preset, lora: { ...preset.lora, r: 0 } });
    expect(rank.field).toBe('lora.r');
    expect(rank.message).toBe('preset "multi_task", field "lora.r": must be a positive integer, got 0');
    expect((await refusal({ ...preset, training: { ...preset.training, lr: 2 } })).field).toBe('training.lr');
    expect((await refusal({ ...preset, filter: { minResponseChars: 500, maxResponseChars: 100 } })).field).toBe('filter.maxResponseChars');
  });

  it('reports, rule by rule, exactly the rows filterDataset removes', async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const bytes = noisySample();
    const { dataset } = await storedDataset(engine, bytes, 'noisy.jsonl');
    const options = { minResponseChars: 40, maxResponseChars: 800 };
    const report = await engine.previewFilter(dataset.id, options);
    const expected = filterDataset(parseJsonlBytes(bytes).rows, options);
    expect(report.totalRows).toBe(35);
    expect(report.keptRows).toBe(expected.kept.length);
    for (const rule of FILTER_RULES) {
      expect(report.removed[rule].map((r) => [r.index, r.reason])).toEqual(expected.removed[rule].map((r) => [r.index, r.reason]));
    }
    expect(report.removed.exact_duplicate.map((r) => r.duplicateOf)).toEqual([0]);
    expect(report.removed.near_duplicate.map((r) => r.duplicateOf)).toEqual([1]);
    // The sample itself is clean under these bounds: exactly the four added rows go.
    expect(report.removed.response_length.map((r) => r.index)).toEqual([33, 34]);
    expect(report.keptRows).toBe(31);
    await expect(engine.previewFilter(dataset.id, { minResponseChars: 50, maxResponseChars: 10 })).rejects.toThrow(QualityFilterError);
  });

  it('trains on the filtered rows and resumes on the same rows after a pause', async () => {
    const engine = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName(), historyFlushMs: 0 });
    expect((await engine.init()).state).toBe('ready');
    const files = readdirSync(STORIES_260K).map((name) => ({
      path: `stories260K/${name}`,
      file: new File([readFileSync(join(STORIES_260K, name))], name),
    }));
    await engine.loadLocalModel(files, 'stories260K');
    // Eight stories and four exact copies: twelve rows make three steps of four, the eight kept two.
    const lines = readFileSync(join(DATA, 'zog_stories_train.jsonl'), 'utf8').split('\n').slice(0, 8);
    const bytes = new TextEncoder().encode(`${[...lines, ...lines.slice(0, 4)].join('\n')}\n`);
    const { dataset } = await storedDataset(engine, bytes, 'zog.jsonl');
    const settings = {
      lora: { r: 4, alpha: 8, targets: ['q_proj' as const] },
      lr: 5e-3,
      epochs: 1,
      batchSize: 4,
      maxLength: 24,
      evalFraction: 0,
      checkpointEvery: 1,
    };
    const filter = { minResponseChars: 10, maxResponseChars: 2000 };

    await expect(
      engine.startRun({ datasetId: dataset.id, evalDatasetId: null, settings, filter: { minResponseChars: 5000, maxResponseChars: 6000 } }),
    ).rejects.toThrow(/removes all 12 rows of "zog.jsonl" \(response_length removed 12\); widen the response length bounds/);
    const paused = await engine.startRun({ datasetId: dataset.id, evalDatasetId: null, settings, filter }, (event) => {
      if (event.type === 'progress') void engine.pause();
    });
    expect(paused).toMatchObject({ status: 'paused', step: 1, totalSteps: 2 });
    const run = (await engine.listRuns()).find((r) => r.status === 'paused')!;
    expect(run.filter).toEqual(filter);
    const done = await engine.resumeRun(run.id);
    expect(done).toMatchObject({ status: 'completed', step: 2, totalSteps: 2 });
  });
});

describe('datasets: imports from chatbot stacks', () => {
  const imports = join(REPO_ROOT, 'tests/data/imports');

  it("imports Open WebUI's JSON export with its entry-level report, and stores its valid chats", async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const bytes = readFileSync(join(imports, 'open_webui_export.json'));
    const expected = parseImportBytes(new Uint8Array(bytes), { fileName: 'open_webui_export.json' });
    const preview = await engine.importDataset('webui', new Blob([bytes]), 'open_webui_export.json');
    expect(preview).toMatchObject({ format: 'open_webui', validRows: 3, errors: expected.errors });
    expect(preview.errors).toHaveLength(4);
    expect(preview.errors.every((e) => typeof e.entry === 'number')).toBe(true);
    expect(preview.analysis.ragIndices).toEqual([0, 2]);
    const stored = await engine.commitDataset(preview.previewId);
    expect(stored).toMatchObject({ format: 'open_webui', rowCount: 3, invalidLineCount: 4 });
  });

  it('imports OpenAI-style logs with their line-level report', async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const bytes = readFileSync(join(imports, 'openai_log.jsonl'));
    const preview = await engine.importDataset('gateway', new Blob([bytes]), 'openai_log.jsonl');
    expect(preview).toMatchObject({ format: 'openai_log', validRows: 4, totalLines: 13, skippedBlank: 1 });
    expect(preview.errors.map((e) => e.line)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
  });
});

describe('datasets: the task filter of the single-task advice', () => {
  it("plans the recommended rag_enhanced preset with the task filter on: the sample's 10 RAG rows are kept", async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const { dataset } = await storedDataset(engine, SAMPLE, 'chat_rag_sample.jsonl');
    const rag = builtinPresets().find((p) => p.id === 'rag_enhanced')!;
    const plan = await engine.planPreset({ datasetId: dataset.id, evalDatasetId: null, preset: rag, settings: {} });
    expect(plan.keepTask).toBe('rag_enhanced');
    expect(plan.filter.options.keepTask).toBe('rag_enhanced');
    expect(plan.filter.keptRows).toBe(10);
    expect(plan.filter.removed.other_task).toHaveLength(21);
    // Another preset does not follow the advice, so no task filter.
    const other = await engine.planPreset({ datasetId: dataset.id, evalDatasetId: null, preset: multiTask(), settings: {} });
    expect(other.keepTask).toBeNull();
    expect(other.filter.removed.other_task).toEqual([]);
  });

  it('names the rule when the filter leaves no row', async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const stories = readFileSync(join(DATA, 'zog_stories_train.jsonl'), 'utf8').split('\n').slice(0, 4).join('\n');
    const { dataset } = await storedDataset(engine, new TextEncoder().encode(stories), 'zog.jsonl');
    const filter = { minResponseChars: 1, maxResponseChars: 4000, keepTask: 'rag_enhanced' as const };
    const report = await engine.previewFilter(dataset.id, filter);
    expect(report).toMatchObject({ keptRows: 0, totalRows: 4 });
    expect(report.removed.other_task).toHaveLength(4);
    // What a run on it refuses with.
    expect(() => filteredRows(parseJsonlBytes(new TextEncoder().encode(stories)).rows, filter, 'zog.jsonl')).toThrow(
      'The quality filter removes all 4 rows of "zog.jsonl" (other_task removed 4); turn the task filter off ' +
        '(it keeps only rag_enhanced conversations), or train without the filter.',
    );
  });
});

describe('datasets: citation enhancement, previewed and applied as a new dataset', () => {
  const system =
    'Context:\n[1] (plans.md) The Team plan costs 10 euros per seat and month.\n[2] (faq.md) Refunds are issued within five working days.';
  const row = (answer: string) => chatLine(['system', system], ['user', 'How fast are refunds?'], ['assistant', answer]);

  it('previews which sentences gain which [n], then stores the enhanced rows beside the untouched original', async () => {
    const engine = new WebtuneEngine({ dbName: freshDbName() });
    const lines = [
      row('Refunds are issued within five working days.'),
      row('Refunds are issued within five working days [2].'),
      row('I could not find anything about that in our notes here.'),
      chatLine(['user', 'Hi'], ['assistant', 'Hello there, how can I help?']),
    ];
    const { dataset } = await storedDataset(engine, new TextEncoder().encode(`${lines.join('\n')}\n`), 'rag.jsonl');
    const report = await engine.previewEnhancement(dataset.id);
    expect(report).toMatchObject({ datasetId: dataset.id, totalRows: 4, ragRows: 3, rowsChanged: 1, citationsAdded: 1, threshold: 0.5 });
    expect(report.rows).toEqual([
      { row: 0, changes: [{ message: 2, sentence: 'Refunds are issued within five working days.', source: 2, overlap: 1 }] },
    ]);
    expect((await engine.listDatasets()).map((d) => d.id)).toEqual([dataset.id]);

    const enhanced = await engine.applyEnhancement(dataset.id);
    expect(enhanced).toMatchObject({ name: 'rag.jsonl (citations added)', rowCount: 4, format: 'messages' });
    expect(enhanced.id).not.toBe(dataset.id);
    const after = await engine.previewEnhancement(enhanced.id);
    expect(after.rowsChanged).toBe(0);
    const original = await engine.previewEnhancement(dataset.id);
    expect(original.rowsChanged).toBe(1);
    await expect(engine.applyEnhancement(enhanced.id)).rejects.toThrow(/changes no row/);
  });
});

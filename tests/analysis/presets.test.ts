import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinPresets, capWarmup, loadPresets, type Preset, PresetError } from '../../src/analysis/presets';
import { MULTI_TASK_PRESET } from '../../src/analysis/recommend';
import { TASK_IDS } from '../../src/analysis/tasks';

const PRESETS_FILE = path.resolve(__dirname, '../../presets/presets.json');
// biome-ignore lint/suspicious/noExplicitAny: the tests write wrongly typed values into the raw JSON on purpose
type RawPreset = Record<string, any>;
const readFile = (): { version: number; presets: RawPreset[] } => JSON.parse(readFileSync(PRESETS_FILE, 'utf8'));
const byId = (presets: Preset[], id: string) => presets.find((p) => p.id === id)!;

/** Applies a hand edit to a fresh copy of the file and returns the error loading it raises. */
function refused(edit: (file: ReturnType<typeof readFile>) => void): PresetError {
  const file = readFile();
  edit(file);
  try {
    loadPresets(file);
  } catch (error) {
    expect(error).toBeInstanceOf(PresetError);
    return error as PresetError;
  }
  throw new Error('the edited presets were accepted');
}
const presetNamed = (file: ReturnType<typeof readFile>, id: string) => file.presets.find((p) => p.id === id)!;

describe('presets/presets.json', () => {
  const presets = loadPresets(readFile());

  it('has a preset per task and the multi-task preset, each with its reasoning', () => {
    expect(presets.map((p) => p.id).sort()).toEqual([...TASK_IDS, MULTI_TASK_PRESET].sort());
    for (const preset of presets) {
      expect(preset.label.length).toBeGreaterThan(10);
      expect(preset.why.length).toBeGreaterThan(100);
    }
  });

  it('is what builtinPresets() ships', () => {
    expect(builtinPresets()).toEqual(presets);
  });

  it('holds the specified settings', () => {
    expect(byId(presets, 'rag_enhanced')).toMatchObject({
      lora: { r: 20, alpha: 40, dropout: 0.1, targets: ['q_proj', 'k_proj', 'v_proj'] },
      training: { lr: 2e-4, epochs: 3, warmupSteps: 100, batchSize: 3, gradAccum: 4 },
      filter: { minResponseChars: 40, maxResponseChars: 800 },
    });
    expect(byId(presets, 'technical_implementation')).toMatchObject({
      lora: { r: 24, alpha: 48, targets: ['q_proj', 'k_proj', 'v_proj'] },
      training: { lr: 2e-4, epochs: 3, warmupSteps: 100 },
      filter: { minResponseChars: 30, maxResponseChars: 800 },
    });
    expect(byId(presets, 'ai_ml_education')).toMatchObject({
      lora: { r: 32, alpha: 64, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
      training: { lr: 1e-4, epochs: 4, warmupSteps: 200 },
      filter: { minResponseChars: 50, maxResponseChars: 1000 },
    });
    expect(byId(presets, MULTI_TASK_PRESET)).toMatchObject({ lora: { r: 32 }, training: { lr: 1.5e-4, epochs: 4 } });
  });

  it('covers every task preset length bound with the multi-task bounds', () => {
    const multi = byId(presets, MULTI_TASK_PRESET).filter;
    for (const task of TASK_IDS) {
      const { minResponseChars, maxResponseChars } = byId(presets, task).filter;
      expect(multi.minResponseChars).toBeLessThanOrEqual(minResponseChars);
      expect(multi.maxResponseChars).toBeGreaterThanOrEqual(maxResponseChars);
    }
  });
});

describe('hand edits that are refused', () => {
  it('rank 0', () => {
    const error = refused((file) => (presetNamed(file, 'rag_enhanced').lora.r = 0));
    expect(error).toMatchObject({ presetId: 'rag_enhanced', field: 'lora.r' });
    expect(error.message).toBe('preset "rag_enhanced", field "lora.r": must be a positive integer, got 0');
  });

  it('a negative learning rate', () => {
    const error = refused((file) => (presetNamed(file, 'ai_ml_education').training.lr = -1e-4));
    expect(error).toMatchObject({ presetId: 'ai_ml_education', field: 'training.lr' });
    expect(error.message).toContain('"training.lr": must be a positive number no larger than 1, got -0.0001');
  });

  it('an unknown target module', () => {
    const error = refused((file) => presetNamed(file, 'code_generation').lora.targets.push('x_proj'));
    expect(error).toMatchObject({ presetId: 'code_generation', field: 'lora.targets[7]' });
    expect(error.message).toContain('unknown target "x_proj"; choose from q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
  });

  it('a missing field', () => {
    const error = refused((file) => delete presetNamed(file, 'multi_task').training.epochs);
    expect(error).toMatchObject({ presetId: 'multi_task', field: 'training.epochs' });
    expect(error.message).toContain('is missing');
  });

  it('a value of the wrong type', () => {
    const error = refused((file) => (presetNamed(file, 'rag_enhanced').training.warmupSteps = '100'));
    expect(error).toMatchObject({ presetId: 'rag_enhanced', field: 'training.warmupSteps' });
    expect(error.message).toContain('must be a number (a non-negative integer), got "100"');
  });

  it('a misspelt field', () => {
    const error = refused((file) => (presetNamed(file, 'rag_enhanced').training.learningRate = 1e-4));
    expect(error).toMatchObject({ presetId: 'rag_enhanced', field: 'training.learningRate' });
    expect(error.message).toContain('unknown field');
  });

  it('other out-of-range values', () => {
    const cases: [(p: RawPreset) => void, string][] = [
      [(p) => (p.lora.alpha = 0), 'lora.alpha'],
      [(p) => (p.lora.dropout = 1), 'lora.dropout'],
      [(p) => (p.lora.targets = []), 'lora.targets'],
      [(p) => (p.lora.targets = ['q_proj', 'q_proj']), 'lora.targets[1]'],
      [(p) => (p.training.epochs = 2.5), 'training.epochs'],
      [(p) => (p.training.schedule = 'exponential'), 'training.schedule'],
      [(p) => (p.training.maxGradNorm = -1), 'training.maxGradNorm'],
      [(p) => (p.filter.maxResponseChars = 10), 'filter.maxResponseChars'],
      [(p) => (p.why = ''), 'why'],
      [(p) => (p.lora = 'q_proj'), 'lora'],
    ];
    for (const [edit, field] of cases) {
      expect(refused((file) => edit(presetNamed(file, 'technical_implementation')))).toMatchObject({
        presetId: 'technical_implementation',
        field,
      });
    }
  });

  it('a preset without an id, or with another preset’s id', () => {
    const missing = refused((file) => delete file.presets[1].id);
    expect(missing).toMatchObject({ presetId: null, field: 'id' });
    expect(missing.message).toBe('preset #2, field "id": is missing');
    expect(refused((file) => (file.presets[1].id = 'rag_enhanced'))).toMatchObject({ presetId: 'rag_enhanced', field: 'id' });
  });

  it('a file in another shape', () => {
    expect(refused((file) => (file.version = 2))).toMatchObject({ presetId: null, field: 'version' });
    expect(refused((file) => (file.presets = []))).toMatchObject({ presetId: null, field: 'presets' });
    expect(() => loadPresets([])).toThrow(PresetError);
  });
});

describe('warmup capped to the run', () => {
  const rag = byId(builtinPresets(), 'rag_enhanced');

  it('keeps the preset warmup when the run is long enough', () => {
    expect(capWarmup(rag, 5000)).toEqual({ warmupSteps: 100, note: null });
    expect(capWarmup(rag, 1000)).toEqual({ warmupSteps: 100, note: null });
  });

  it('caps warmup at 10% of a short run and says so', () => {
    const capped = capWarmup(rag, 30);
    expect(capped.warmupSteps).toBe(3);
    expect(capped.note).toContain('warmup shortened from 100 to 3 steps');
    expect(capped.note).toContain('only 30 optimizer steps');
    expect(capWarmup(rag, 999).warmupSteps).toBe(99);
    expect(capWarmup(rag, 7).warmupSteps).toBe(0);
  });

  it('refuses a step count that is not a count', () => {
    expect(() => capWarmup(rag, -1)).toThrow(RangeError);
    expect(() => capWarmup(rag, 2.5)).toThrow(RangeError);
  });
});

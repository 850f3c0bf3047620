/**
 * Training presets are data (presets/presets.json, explained in presets/README.md). Because users
 * edit that file by hand, every field is checked here and an error names the preset and the field,
 * instead of a bad value surfacing as a diverging run.
 */
import presetsJson from '../../presets/presets.json';
import { LORA_TARGETS, type LoraTarget } from '../lora/config';

export const SCHEDULES = ['cosine', 'linear', 'constant'] as const;
export type Schedule = (typeof SCHEDULES)[number];

export interface Preset {
  id: string;
  label: string;
  why: string;
  lora: { r: number; alpha: number; dropout: number; targets: LoraTarget[] };
  training: {
    lr: number;
    epochs: number;
    warmupSteps: number;
    /** Sequences per micro-batch; one optimizer step sees batchSize * gradAccum sequences. */
    batchSize: number;
    gradAccum: number;
    /** Tokens per sequence; longer ones are truncated. */
    maxLength: number;
    schedule: Schedule;
    weightDecay: number;
    /** Global gradient-norm clip; 0 turns clipping off. */
    maxGradNorm: number;
  };
  /** Bounds on every assistant turn (completion, text), in characters; see filter.ts. */
  filter: { minResponseChars: number; maxResponseChars: number };
}

export class PresetError extends Error {
  override name = 'PresetError';
  /** presetId is null when the preset has no usable id; the message then gives its position. */
  constructor(
    readonly presetId: string | null,
    readonly field: string,
    problem: string,
    position?: number,
  ) {
    const which = presetId !== null ? `preset "${presetId}"` : position !== undefined ? `preset #${position + 1}` : 'presets file';
    super(`${which}, field "${field}": ${problem}`);
  }
}

/** Warmup never takes more than this share of a run. */
export const MAX_WARMUP_FRACTION = 0.1;

type Check = (value: unknown) => string | null;

const shown = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

const number =
  (what: string, ok: (x: number) => boolean): Check =>
  (v) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return `must be a number (${what}), got ${shown(v)}`;
    return ok(v) ? null : `must be ${what}, got ${v}`;
  };
const positiveInt = number('a positive integer', (x) => Number.isInteger(x) && x >= 1);
const nonNegativeInt = number('a non-negative integer', (x) => Number.isInteger(x) && x >= 0);
const text: Check = (v) => (typeof v === 'string' && v.trim() !== '' ? null : `must be a non-empty string, got ${shown(v)}`);

const SECTIONS: Record<'lora' | 'training' | 'filter', Record<string, Check>> = {
  lora: {
    r: positiveInt,
    alpha: number('a positive number', (x) => x > 0),
    dropout: number('in [0, 1)', (x) => x >= 0 && x < 1),
    targets: (v) => (Array.isArray(v) && v.length > 0 ? null : `must be a non-empty list of projections, got ${shown(v)}`),
  },
  training: {
    lr: number('a positive number no larger than 1', (x) => x > 0 && x <= 1),
    epochs: positiveInt,
    warmupSteps: nonNegativeInt,
    batchSize: positiveInt,
    gradAccum: positiveInt,
    maxLength: positiveInt,
    schedule: (v) => ((SCHEDULES as readonly unknown[]).includes(v) ? null : `must be one of ${SCHEDULES.join(', ')}, got ${shown(v)}`),
    weightDecay: number('a non-negative number', (x) => x >= 0),
    maxGradNorm: number('a non-negative number (0 turns clipping off)', (x) => x >= 0),
  },
  filter: {
    minResponseChars: nonNegativeInt,
    maxResponseChars: positiveInt,
  },
};
const TOP_FIELDS: Record<string, Check> = {
  // Ids are typed on the command line (`--preset rag_enhanced`), so they stay plain.
  id: (v) =>
    typeof v === 'string' && /^[a-z][a-z0-9_-]*$/.test(v)
      ? null
      : `must be lowercase letters, digits, _ or - starting with a letter, got ${shown(v)}`,
  label: text,
  why: text,
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkObject(
  value: unknown,
  fields: Record<string, Check | object>,
  prefix: string,
  fail: (field: string, problem: string) => never,
): Record<string, unknown> {
  if (!isRecord(value)) return fail(prefix || 'preset', `must be an object, got ${shown(value)}`);
  const at = (key: string) => (prefix ? `${prefix}.${key}` : key);
  // A misspelt field would otherwise be ignored and its default used without anyone noticing.
  for (const key of Object.keys(value)) {
    if (!(key in fields)) fail(at(key), `unknown field; expected ${Object.keys(fields).join(', ')}`);
  }
  for (const [key, check] of Object.entries(fields)) {
    if (!(key in value)) fail(at(key), 'is missing');
    if (typeof check === 'function') {
      const problem = check(value[key]);
      if (problem !== null) fail(at(key), problem);
    }
  }
  return value;
}

function parsePreset(raw: unknown, position: number): Preset {
  const id = isRecord(raw) && typeof raw.id === 'string' && TOP_FIELDS.id(raw.id) === null ? raw.id : null;
  const fail = (field: string, problem: string): never => {
    throw new PresetError(id, field, problem, position);
  };
  const preset = checkObject(raw, { ...TOP_FIELDS, ...SECTIONS }, '', fail);
  for (const section of ['lora', 'training', 'filter'] as const) checkObject(preset[section], SECTIONS[section], section, fail);
  const parsed = preset as unknown as Preset;

  const targets = parsed.lora.targets as unknown[];
  targets.forEach((target, i) => {
    if (!(LORA_TARGETS as readonly unknown[]).includes(target)) {
      fail(`lora.targets[${i}]`, `unknown target ${shown(target)}; choose from ${LORA_TARGETS.join(', ')}`);
    }
    if (targets.indexOf(target) !== i) fail(`lora.targets[${i}]`, `${shown(target)} is listed twice`);
  });
  const { minResponseChars, maxResponseChars } = parsed.filter;
  if (maxResponseChars < minResponseChars) {
    fail('filter.maxResponseChars', `must be at least minResponseChars (${minResponseChars}), got ${maxResponseChars}`);
  }
  return {
    id: parsed.id,
    label: parsed.label,
    why: parsed.why,
    lora: { ...parsed.lora, targets: [...parsed.lora.targets] },
    training: { ...parsed.training },
    filter: { minResponseChars, maxResponseChars },
  };
}

/** One preset edited outside the presets file (on the page, in a run request), checked field by field like the file. */
export function validatePreset(raw: unknown): Preset {
  return parsePreset(raw, 0);
}

/** Reads the parsed presets file: `{ "version": 1, "presets": [...] }`. */
export function loadPresets(json: unknown): Preset[] {
  const fileError = (field: string, problem: string): never => {
    throw new PresetError(null, field, problem);
  };
  const file = checkObject(json, { version: () => null, presets: () => null }, '', fileError);
  if (file.version !== 1) fileError('version', `must be 1, got ${shown(file.version)}`);
  if (!Array.isArray(file.presets) || file.presets.length === 0)
    fileError('presets', `must be a non-empty list, got ${shown(file.presets)}`);
  const presets = (file.presets as unknown[]).map(parsePreset);
  presets.forEach((preset, i) => {
    if (presets.findIndex((p) => p.id === preset.id) !== i) throw new PresetError(preset.id, 'id', 'another preset has the same id', i);
  });
  return presets;
}

/** The presets shipped in presets/presets.json. */
export function builtinPresets(): Preset[] {
  return loadPresets(presetsJson);
}

/**
 * Warmup longer than the run would keep the learning rate from ever reaching its peak, so it is
 * capped at MAX_WARMUP_FRACTION of the run's optimizer steps, with a note for the user.
 */
export function capWarmup(preset: Preset, totalSteps: number): { warmupSteps: number; note: string | null } {
  if (!Number.isInteger(totalSteps) || totalSteps < 0) throw new RangeError(`totalSteps must be a non-negative integer, got ${totalSteps}`);
  const wanted = preset.training.warmupSteps;
  // Without the epsilon a product that lands a hair under an integer would floor one step short.
  const cap = Math.floor(MAX_WARMUP_FRACTION * totalSteps + 1e-9);
  if (wanted <= cap) return { warmupSteps: wanted, note: null };
  return {
    warmupSteps: cap,
    note:
      `warmup shortened from ${wanted} to ${cap} steps: this run has only ${totalSteps} optimizer steps, ` +
      `and warmup is kept to at most ${100 * MAX_WARMUP_FRACTION}% of a run (preset "${preset.id}" was sized for larger datasets)`,
  };
}

/**
 * Golden cases: a small batch, a LoRA config and the loss, gradients and one AdamW step computed
 * by PyTorch + PEFT, which the engine must reproduce. Layout described in REFERENCE.md.
 */
import { GoldenCaseError, ModelLoadError } from './errors';
import type { FileSource } from './file-source';
import { readSafetensors } from './safetensors';

export interface GoldenTensor {
  shape: number[];
  data: Float32Array;
}

export interface GoldenCase {
  name: string;
  /** Model folder name under `../shared/models/`. */
  model: string;
  lora: { r: number; alpha: number; scaling: number; targetModules: string[]; dropout: number; useRslora: boolean };
  inputIds: number[][];
  labels: number[][];
  loss: number;
  lastPositionLogitsRow0First8?: number[];
  adamw: { lr: number; betas: [number, number]; eps: number; weightDecay: number };
  adapterInit: Map<string, GoldenTensor>;
  grads: Map<string, GoldenTensor>;
  adapterAfterStep: Map<string, GoldenTensor>;
}

const CASE_FILE = 'case.json';
const TENSOR_FILES = ['adapter_init.safetensors', 'grads.safetensors', 'adapter_after_one_adamw_step.safetensors'] as const;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function lastPathSegment(description: string): string {
  const parts = description.split(/[\\/]/).filter((p) => p !== '');
  return parts[parts.length - 1] ?? description;
}

/** `name` defaults to the last segment of the source's description (the case directory's name). */
export async function loadGoldenCase(source: FileSource, name = lastPathSegment(source.description)): Promise<GoldenCase> {
  const dir = source.description;
  const fail = (file: string, problem: string): never => {
    throw new GoldenCaseError(problem, dir, file);
  };
  const read = async (file: string): Promise<Uint8Array> => {
    if (!(await source.has(file))) fail(file, 'is missing');
    return source.read(file);
  };

  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(await read(CASE_FILE)));
  } catch (err) {
    if (err instanceof GoldenCaseError) throw err;
    fail(CASE_FILE, `is not valid JSON (${(err as Error).message})`);
  }
  if (!isRecord(json)) return fail(CASE_FILE, 'is not a JSON object');

  const field = <T>(obj: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string): T => {
    const v = obj[key];
    if (!check(v)) return fail(CASE_FILE, `has ${JSON.stringify(key)} = ${JSON.stringify(v)}, expected ${what}`);
    return v;
  };
  const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';
  const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every(isString);
  const isNumberList = (v: unknown): v is number[] => Array.isArray(v) && v.every(isNumber);
  const isRows = (v: unknown): v is number[][] =>
    Array.isArray(v) && v.length > 0 && v.every((row) => Array.isArray(row) && row.length > 0 && row.every(isInt));
  const isPositiveInt = (v: unknown): v is number => isInt(v) && v > 0;
  const isBetas = (v: unknown): v is [number, number] => isNumberList(v) && v.length === 2;
  const isOptionalBool = (v: unknown): v is boolean | undefined => v === undefined || typeof v === 'boolean';

  const model = field(json, 'model', isString, 'the model folder name');
  const lora = field(json, 'lora', isRecord, 'an object');
  const adamw = field(json, 'adamw', isRecord, 'an object');
  const inputIds = field(json, 'input_ids', isRows, 'a non-empty list of non-empty rows of token ids');
  const labels = field(json, 'labels', isRows, 'a non-empty list of non-empty rows of token ids');
  const rowLength = inputIds[0].length;
  if (inputIds.some((row) => row.length !== rowLength)) fail(CASE_FILE, 'has input_ids rows of unequal length');
  if (labels.length !== inputIds.length || labels.some((row) => row.length !== rowLength)) {
    fail(CASE_FILE, `has labels of a different shape than input_ids ([${inputIds.length}, ${rowLength}])`);
  }

  const r = field(lora, 'r', isPositiveInt, 'a positive integer (lora.r)');
  const alpha = field(lora, 'lora_alpha', isNumber, 'a number (lora.lora_alpha)');
  const useRslora = field(lora, 'use_rslora', isOptionalBool, 'true or false (lora.use_rslora)') ?? false;
  const scaling = field(lora, 'scaling', isNumber, 'a number (lora.scaling)');
  const impliedScaling = useRslora ? alpha / Math.sqrt(r) : alpha / r;
  if (Math.abs(scaling - impliedScaling) > 1e-6 * Math.abs(impliedScaling)) {
    fail(CASE_FILE, `has lora.scaling ${scaling}, but lora_alpha / ${useRslora ? 'sqrt(r)' : 'r'} is ${impliedScaling}`);
  }

  const lastLogits = json.last_position_logits_row0_first8;
  if (lastLogits !== undefined && !isNumberList(lastLogits)) {
    fail(CASE_FILE, 'has last_position_logits_row0_first8 that is not a list of numbers');
  }

  const tensors: Map<string, GoldenTensor>[] = [];
  for (const file of TENSOR_FILES) {
    const bytes = await read(file);
    try {
      const parsed = readSafetensors(bytes, file).tensors;
      tensors.push(new Map([...parsed].map(([n, t]) => [n, { shape: t.shape, data: t.data }])));
    } catch (err) {
      if (!(err instanceof ModelLoadError)) throw err;
      fail(file, `could not be read: ${err.message}`);
    }
  }
  const [adapterInit, grads, adapterAfterStep] = tensors;
  if (adapterInit.size === 0) fail(TENSOR_FILES[0], 'holds no tensors');
  for (const [i, other] of [grads, adapterAfterStep].entries()) {
    for (const [tensorName, t] of adapterInit) {
      const match = other.get(tensorName);
      if (!match || match.shape.join() !== t.shape.join()) {
        fail(TENSOR_FILES[i + 1], `has no tensor "${tensorName}" of shape [${t.shape.join(', ')}] (as in ${TENSOR_FILES[0]})`);
      }
    }
    if (other.size !== adapterInit.size) fail(TENSOR_FILES[i + 1], `holds other tensors than ${TENSOR_FILES[0]}`);
  }

  return {
    name,
    model,
    lora: {
      r,
      alpha,
      scaling,
      targetModules: field(lora, 'target_modules', isStringList, 'a non-empty list of module names (lora.target_modules)'),
      dropout: field(lora, 'lora_dropout', isNumber, 'a number (lora.lora_dropout)'),
      useRslora,
    },
    inputIds,
    labels,
    loss: field(json, 'loss', isNumber, 'a number'),
    ...(lastLogits !== undefined ? { lastPositionLogitsRow0First8: lastLogits as number[] } : {}),
    adamw: {
      lr: field(adamw, 'lr', isNumber, 'a number (adamw.lr)'),
      betas: field(adamw, 'betas', isBetas, 'two numbers (adamw.betas)'),
      eps: field(adamw, 'eps', isNumber, 'a number (adamw.eps)'),
      weightDecay: field(adamw, 'weight_decay', isNumber, 'a number (adamw.weight_decay)'),
    },
    adapterInit,
    grads,
    adapterAfterStep,
  };
}

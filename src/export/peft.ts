/**
 * PEFT adapter folders: `adapter_config.json` + `adapter_model.safetensors`, the format that
 * `peft`, `transformers`, vLLM and Ollama read. The reader accepts what Python PEFT writes for
 * plain LoRA on the supported projections and refuses, with the reason, every variant that
 * webtune would otherwise apply wrongly (DoRA, per-module ranks, trained biases, saved modules).
 */
import { LORA_TARGETS, type LoraConfig, LoraConfigError, validateLoraConfig } from '../lora/config';
import type { ModelConfig } from '../model/config';
import { SafetensorsFormatError } from '../model/errors';
import type { FileSource } from '../model/file-source';
import { CONVERTIBLE_DTYPES, type SafetensorsHeader, readSafetensorsHeader, tensorToFloat32, writeSafetensors } from '../model/safetensors';
import { preview } from '../util/preview';
import { type AdapterTensor, type AdapterTensors, checkAdapterTensors } from './adapter';
import { AdapterExportError, AdapterImportError } from './errors';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** PEFT writes about 1 KB of adapter_config.json; anything past this is not one, and is refused unread. */
export const MAX_ADAPTER_CONFIG_BYTES = 2 ** 20;

/** webtune knows seven module names; a longer target_modules list is refused before its names are read. */
export const MAX_TARGET_MODULES = 64;

/** adapter_config.json's name for each LoRA setting, so a refusal names the field to fix. */
const PEFT_FIELD: Record<string, string> = { r: 'r', alpha: 'lora_alpha', dropout: 'lora_dropout', targets: 'target_modules' };

/** A type alias, not an interface, so it is assignable to Record<string, Uint8Array> (zipFiles, writeFolder). */
export type PeftAdapterFiles = {
  'adapter_config.json': Uint8Array;
  'adapter_model.safetensors': Uint8Array;
};

export function peftAdapterFiles(adapter: AdapterTensors, opts: { baseModel: string | null }): PeftAdapterFiles {
  const { config, tensors } = adapter;
  checkAdapterTensors(tensors, config, null, (problem) => {
    throw new AdapterExportError(`Cannot export the adapter: ${problem}.`);
  });
  const adapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: opts.baseModel,
    r: config.r,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    // Explicit names: PEFT also accepts a regex string, which other tools (Ollama) do not.
    target_modules: [...config.targets],
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: config.useRslora,
    use_dora: false,
    init_lora_weights: true,
    modules_to_save: null,
    inference_mode: true,
  };
  return {
    'adapter_config.json': new TextEncoder().encode(`${JSON.stringify(adapterConfig, null, 2)}\n`),
    // transformers refuses to load safetensors whose "format" metadata is not "pt".
    'adapter_model.safetensors': writeSafetensors(
      [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })),
      { format: 'pt' },
    ),
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isEmpty = (v: unknown) =>
  v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (isRecord(v) && Object.keys(v).length === 0);

async function readConfig(files: FileSource): Promise<Record<string, unknown>> {
  const where = files.description;
  if (!(await files.has(ADAPTER_CONFIG_FILE))) {
    if (await files.has('config.json')) {
      throw new AdapterImportError(
        `${where} holds a model (config.json), not a LoRA adapter: choose the adapter folder, the one with ` +
          `${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}.`,
      );
    }
    throw new AdapterImportError(
      `${where} has no ${ADAPTER_CONFIG_FILE}: ` +
        `a PEFT LoRA adapter is a folder (or zip) with ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}.`,
    );
  }
  const size = await files.size(ADAPTER_CONFIG_FILE);
  if (size > MAX_ADAPTER_CONFIG_BYTES) {
    throw new AdapterImportError(
      `${ADAPTER_CONFIG_FILE} in ${where} is ${size} bytes, larger than any adapter config (at most ${MAX_ADAPTER_CONFIG_BYTES}); ` +
        'choose the adapter folder PEFT or webtune wrote.',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(await files.read(ADAPTER_CONFIG_FILE)));
  } catch (err) {
    throw new AdapterImportError(`${ADAPTER_CONFIG_FILE} in ${where} is not valid JSON (${(err as Error).message}).`, { cause: err });
  }
  if (!isRecord(json)) throw new AdapterImportError(`${ADAPTER_CONFIG_FILE} in ${where} is not a JSON object.`);
  return json;
}

/**
 * Reads the LoRA settings, refusing every PEFT option whose effect webtune does not implement and
 * every value that cannot fit `model` (a rank above its hidden size), before anything is allocated.
 */
function parseAdapterConfig(cfg: Record<string, unknown>, where: string, model: ModelConfig): LoraConfig {
  const refuse = (problem: string): never => {
    throw new AdapterImportError(`${ADAPTER_CONFIG_FILE} in ${where}: ${problem}.`);
  };
  const { peft_type: peftType, target_modules: targets } = cfg;
  if (peftType === undefined) refuse('has no "peft_type"; PEFT writes "peft_type": "LORA" for a LoRA adapter');
  if (peftType !== 'LORA') refuse(`peft_type ${preview(peftType)} is not supported; webtune imports LoRA adapters only (peft_type "LORA")`);
  if (cfg.use_dora === true) refuse('use_dora is true; DoRA adapters are not supported, only plain LoRA');
  if (cfg.fan_in_fan_out === true) {
    refuse('fan_in_fan_out is true (weights stored transposed, as for GPT-2 Conv1D layers); Llama and Qwen2 adapters never use it');
  }
  if (cfg.bias !== undefined && cfg.bias !== 'none') {
    refuse(`bias ${preview(cfg.bias)} trains bias terms, which webtune cannot apply; only bias "none" is supported`);
  }
  if (cfg.lora_bias === true) refuse('lora_bias is true (a trained bias on lora_B), which webtune cannot apply');
  if (!isEmpty(cfg.modules_to_save)) {
    refuse(
      `modules_to_save ${preview(cfg.modules_to_save)} stores fully trained copies of those modules, which webtune ` +
        'cannot load; train the adapter without modules_to_save, or merge it in Python instead',
    );
  }
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    if (!isEmpty(cfg[key])) {
      refuse(`${key} ${preview(cfg[key])} gives some modules their own rank or alpha; webtune supports one r and lora_alpha for all`);
    }
  }
  if (!isEmpty(cfg.layers_to_transform)) {
    refuse(`layers_to_transform ${preview(cfg.layers_to_transform)} adapts only some layers; webtune needs adapters on every layer`);
  }
  if (typeof targets === 'string') {
    refuse(
      `target_modules is the pattern ${preview(targets)}, not a list of module names; webtune needs the list, ` +
        `e.g. ["q_proj", "v_proj"] (any of ${LORA_TARGETS.join(', ')}); write the matching names into ${ADAPTER_CONFIG_FILE}`,
    );
  }
  if (Array.isArray(targets) && targets.length > MAX_TARGET_MODULES) {
    refuse(
      `target_modules lists ${targets.length} names, more than the ${MAX_TARGET_MODULES} an adapter may; ` +
        `supported: ${LORA_TARGETS.join(', ')}`,
    );
  }
  if (!Array.isArray(targets) || targets.length === 0 || !targets.every((t) => typeof t === 'string')) {
    refuse(`target_modules ${preview(targets)} is not a non-empty list of module names`);
  }
  const unknown = (targets as string[]).filter((t) => !(LORA_TARGETS as readonly string[]).includes(t));
  if (unknown.length > 0) {
    refuse(`target_modules lists ${preview(unknown)}, which webtune cannot adapt; supported: ${LORA_TARGETS.join(', ')}`);
  }
  const number = (key: string, fallback: number) => {
    const v = cfg[key] ?? fallback;
    return typeof v === 'number' ? v : refuse(`${key} is ${preview(v)}, not a number`);
  };
  if (cfg.use_rslora !== undefined && typeof cfg.use_rslora !== 'boolean') {
    refuse(`use_rslora is ${preview(cfg.use_rslora)}, not true or false`);
  }
  if (cfg.r === undefined || cfg.r === null) refuse('has no "r" (the LoRA rank)');
  let config: LoraConfig;
  try {
    config = validateLoraConfig({
      r: number('r', 0),
      // PEFT's defaults for keys its older versions did not write.
      alpha: number('lora_alpha', 8),
      dropout: number('lora_dropout', 0),
      targets: targets as string[],
      useRslora: cfg.use_rslora === true,
    });
  } catch (err) {
    if (err instanceof LoraConfigError) return refuse(`${PEFT_FIELD[err.field] ?? err.field} is refused (${err.message})`);
    throw err;
  }
  // Every projection has the hidden size on one side, so a larger rank adds nothing to any of them.
  if (config.r > model.hiddenSize) {
    refuse(`r is ${config.r}, larger than the model's hidden size ${model.hiddenSize}; the adapter was not made for this model`);
  }
  return config;
}

/** The weights file's header, read alone: its layout is validated before a byte of tensor data is read. */
async function readWeightsHeader(files: FileSource, where: string, fileName: string): Promise<SafetensorsHeader> {
  if (!(await files.has(ADAPTER_WEIGHTS_FILE))) {
    if (await files.has('adapter_model.bin')) {
      throw new AdapterImportError(
        `${where} has only adapter_model.bin, a PyTorch pickle, which webtune does not read (loading pickles can run code). ` +
          `Convert it to ${ADAPTER_WEIGHTS_FILE} in Python: load it with PeftModel.from_pretrained and call ` +
          'save_pretrained(path, safe_serialization=True).',
      );
    }
    throw new AdapterImportError(`${where} has no ${ADAPTER_WEIGHTS_FILE} next to ${ADAPTER_CONFIG_FILE}; add the adapter weights.`);
  }
  try {
    return await readSafetensorsHeader(files, ADAPTER_WEIGHTS_FILE, fileName);
  } catch (err) {
    if (err instanceof SafetensorsFormatError) throw new AdapterImportError(err.message, { cause: err });
    throw err;
  }
}

/**
 * Loads a PEFT LoRA adapter and checks that it fits `model` exactly; tensors come back as f32.
 * The config and the weights' header are checked first, so tensor data is only read once its
 * size is known to be what the model and the config imply.
 */
export async function readPeftAdapter(files: FileSource, model: ModelConfig): Promise<AdapterTensors> {
  const where = files.description;
  const config = parseAdapterConfig(await readConfig(files), where, model);
  const fileName = `${ADAPTER_WEIGHTS_FILE} in ${where}`;
  const header = await readWeightsHeader(files, where, fileName);
  const fail = (problem: string): never => {
    throw new AdapterImportError(`${fileName}: ${problem}.`);
  };
  const dora = [...header.tensors.keys()].find((name) => name.includes('lora_magnitude_vector'));
  if (dora) fail(`tensor "${dora}" is a DoRA magnitude vector; DoRA adapters are not supported, only plain LoRA`);
  for (const info of header.tensors.values()) {
    if (!CONVERTIBLE_DTYPES.includes(info.dtype)) {
      fail(`tensor "${info.name}" is stored as ${info.dtype}; adapters must be ${CONVERTIBLE_DTYPES.join(', ')}`);
    }
  }
  checkAdapterTensors(header.tensors, config, model, fail);

  const data = await files.read(ADAPTER_WEIGHTS_FILE, header.dataStart, await files.size(ADAPTER_WEIGHTS_FILE));
  const tensors = new Map<string, AdapterTensor>();
  for (const info of header.tensors.values()) {
    const raw = data.subarray(info.begin, info.end);
    tensors.set(info.name, { shape: [...info.shape], data: tensorToFloat32(raw, info.dtype, fileName, info.name) });
  }
  return { config, tensors };
}

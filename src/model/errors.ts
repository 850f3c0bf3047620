/**
 * Errors raised while loading a model, its weights or a golden case. Each message names the file
 * (and tensor) involved and says what the user can do, because these are usually caused by a
 * wrong or incomplete download rather than by a bug.
 */

export const SUPPORTED_MODELS =
  'Llama-architecture models (model_type "llama": Llama, SmolLM2, TinyLlama) and Qwen2 models (model_type "qwen2": Qwen2, Qwen2.5)';

export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}

export class SafetensorsFormatError extends ModelLoadError {
  override name = 'SafetensorsFormatError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file} is not a valid safetensors file: ${problem}. The file is damaged or incomplete; download or export it again.`);
  }
}

export class UnsupportedModelError extends ModelLoadError {
  override name = 'UnsupportedModelError';
  /** `feature` is the unsupported thing itself (an architecture, a config field, a dtype). */
  constructor(
    readonly file: string,
    readonly feature: string,
    problem: string,
    supported: string = SUPPORTED_MODELS,
  ) {
    super(`${file}: ${problem}. webtune supports ${supported}.`);
  }
}

export class MissingTensorError extends ModelLoadError {
  override name = 'MissingTensorError';
  constructor(
    readonly file: string,
    readonly tensor: string,
    detail = 'the model architecture needs it',
    /** Where the architecture was read: config.json, or a GGUF file's own metadata. */
    configSource = 'config.json',
  ) {
    super(
      `${file} has no tensor "${tensor}" (${detail}). ` +
        `The weights are incomplete or belong to a different architecture than ${configSource} says.`,
    );
  }
}

export class TensorShapeError extends ModelLoadError {
  override name = 'TensorShapeError';
  constructor(
    readonly file: string,
    readonly tensor: string,
    readonly expectedShape: readonly number[],
    readonly actualShape: readonly number[],
    /** Where the sizes were read: config.json, or a GGUF file's own metadata. */
    configSource = 'config.json',
  ) {
    const same = configSource === 'config.json' ? 'The weights and config.json do not belong to the same model.' : 'The file is damaged.';
    const shapes = `[${actualShape.join(', ')}] but ${configSource} implies [${expectedShape.join(', ')}]`;
    super(`${file}: tensor "${tensor}" has shape ${shapes}. ${same}`);
  }
}

/** A weight outside the float16 range, so the tensor cannot be stored as f16 (`--weights f16`). */
export class WeightRangeError extends ModelLoadError {
  override name = 'WeightRangeError';
  constructor(
    readonly file: string,
    readonly tensor: string,
    readonly value: number,
    readonly index: number,
  ) {
    super(
      `${file}: tensor "${tensor}" holds ${value} (element ${index}), beyond the float16 range of +-65504, so it cannot be ` +
        'stored as f16. Load the weights as bf16 (the same range as f32) or f32 instead.',
    );
  }
}

export class MissingFileError extends ModelLoadError {
  override name = 'MissingFileError';
  constructor(
    readonly file: string,
    readonly neededFor: string,
    readonly location?: string,
  ) {
    super(
      `${file} is missing${location ? ` from ${location}` : ''}; it is needed for ${neededFor}. ` +
        'Add it (download the complete model folder) and try again.',
    );
  }
}

export class GoldenCaseError extends Error {
  override name = 'GoldenCaseError';
  /** With `directory` and `file`, the message says where the problem is; engine checks pass a full message alone. */
  constructor(
    problem: string,
    readonly directory?: string,
    readonly file?: string,
  ) {
    super(directory && file ? `Golden case ${directory}: ${file} ${problem}. Regenerate the case or fix the file.` : problem);
  }
}

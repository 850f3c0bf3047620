/**
 * Errors of adapter import and export. Adapters come from other tools (PEFT, Unsloth, Axolotl) and
 * go to others (transformers, vLLM, llama.cpp, Ollama), so every message names the file or tensor
 * involved and says what to do instead, not just what is wrong.
 */

/** An adapter (folder, zip or file) that webtune cannot load for the chosen model. */
export class AdapterImportError extends Error {
  override name = 'AdapterImportError';
}

/** An export that would produce files the target tool reads wrongly or refuses. */
export class AdapterExportError extends Error {
  override name = 'AdapterExportError';
}

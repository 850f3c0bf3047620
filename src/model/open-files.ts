/**
 * A model from files the user picked or dropped: a Hugging Face folder (it has config.json:
 * weights.ts `openModel`), or one GGUF file or the shards of one, told apart by the GGUF magic
 * rather than by name (Ollama's blobs are `sha256-<hex>` with no extension; gguf/base.ts). A
 * tokenizer.json (and tokenizer_config.json) among the files replaces the tokenizer webtune builds
 * from the GGUF metadata.
 */
import { blobByteSource } from '../gguf/byte-source';
import { isGguf, openGgufBase } from '../gguf/base';
import { ModelLoadError } from './errors';
import { type FileSource, filesFromList, normalizePath } from './file-source';
import { type OpenedModel, openModel } from './weights';

export interface OpenedFiles {
  opened: OpenedModel;
  /** The Hugging Face folder, for merged exports that copy its files; null for a GGUF. */
  source: FileSource | null;
}

const baseName = (path: string) => normalizePath(path).split('/').pop() ?? path;

async function readJsonFile(blob: Blob, name: string): Promise<unknown> {
  try {
    return JSON.parse(await blob.text());
  } catch (err) {
    throw new ModelLoadError(`${name} is not valid JSON (${(err as Error).message}); download it again.`);
  }
}

export async function openModelFiles(files: Map<string, Blob>, description: string): Promise<OpenedFiles> {
  const names = new Map([...files].map(([path, blob]) => [baseName(path), blob]));
  if (names.has('config.json')) {
    const source = filesFromList(files, description);
    return { opened: await openModel(source), source };
  }
  const ggufs: ReturnType<typeof blobByteSource>[] = [];
  for (const [path, blob] of files) {
    if (path.endsWith('.json')) continue;
    const source = blobByteSource(blob, baseName(path));
    if (await isGguf(source)) ggufs.push(source);
  }
  if (ggufs.length === 0) {
    throw new ModelLoadError(
      `${description} is neither a Hugging Face model folder (no config.json) nor a GGUF file (no file starts with "GGUF"). ` +
        "Pick the model's folder, its .gguf file (all parts of a split one), or, for Ollama, its blob or the models folder.",
    );
  }
  const tokenizerJson = names.get('tokenizer.json');
  const tokenizerConfig = names.get('tokenizer_config.json');
  let tokenizerFiles = null;
  if (tokenizerJson) {
    const config = tokenizerConfig ? await readJsonFile(tokenizerConfig, 'tokenizer_config.json') : {};
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new ModelLoadError('tokenizer_config.json is not a JSON object; download it again.');
    }
    tokenizerFiles = {
      tokenizerJson: await readJsonFile(tokenizerJson, 'tokenizer.json'),
      tokenizerConfig: config as Record<string, unknown>,
    };
  }
  return { opened: await openGgufBase(ggufs, tokenizerFiles), source: null };
}

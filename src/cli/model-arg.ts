/**
 * `--model` for every command that loads a model: a Hugging Face folder (config.json), a GGUF file
 * (told by its magic, so an Ollama blob `sha256-<hex>` works too; `-00001-of-0000N.gguf` brings its
 * sibling shards), a folder holding one GGUF model, or an Ollama store with `--ollama-model <name>`
 * (`--ollama-model` alone looks in $OLLAMA_MODELS, ~/.ollama/models, then the Linux service's
 * /usr/share/ollama/.ollama/models). `--tokenizer <dir|tokenizer.json>` replaces the tokenizer
 * webtune builds from a GGUF's metadata with the model's own.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { isGguf, openGgufBase, type TokenizerFiles } from '../gguf/base';
import { parseGgufShardName, ggufShardName } from '../gguf/file';
import { nodeByteSource } from '../gguf/node-byte-source';
import { ollamaModelsIn, resolveOllamaModel } from '../gguf/ollama';
import type { FileSource } from '../model/file-source';
import { nodeFileSource } from '../model/node-file-source';
import { type OpenedModel, openModel } from '../model/weights';
import { UsageError } from './usage';

export const MODEL_OPTIONS = {
  model: { type: 'string' },
  'ollama-model': { type: 'string' },
  tokenizer: { type: 'string' },
} as const;

export interface ModelArgs {
  model?: string;
  'ollama-model'?: string;
  tokenizer?: string;
}

export interface CliModel {
  opened: OpenedModel;
  /** The Hugging Face folder; null for a GGUF base. */
  source: FileSource | null;
  /** A short name: the folder's, the GGUF file's or the Ollama model's. */
  label: string;
  /** What an Ollama Modelfile's FROM names for this base: the Ollama model, the GGUF file's path or the folder's name. */
  ollamaBase: string;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

async function defaultStore(): Promise<string> {
  if (process.env.OLLAMA_MODELS) return process.env.OLLAMA_MODELS;
  for (const dir of [join(homedir(), '.ollama', 'models'), '/usr/share/ollama/.ollama/models']) {
    if (await exists(join(dir, 'manifests'))) return dir;
  }
  throw new UsageError(
    'no Ollama store found in $OLLAMA_MODELS, ~/.ollama/models or /usr/share/ollama/.ollama/models; give it with --model',
  );
}

async function listFiles(dir: string, depth: number): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory() && depth > 0) out.push(...(await listFiles(full, depth - 1)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

async function readTokenizer(path: string): Promise<TokenizerFiles> {
  const file = (await stat(path)).isDirectory() ? join(path, 'tokenizer.json') : path;
  const configFile = join(dirname(file), 'tokenizer_config.json');
  const json = async (p: string) => JSON.parse(await readFile(p, 'utf8'));
  return { tokenizerJson: await json(file), tokenizerConfig: (await exists(configFile)) ? await json(configFile) : {} };
}

/** The file and, for a shard, every shard of its model. */
async function ggufFiles(path: string): Promise<string[]> {
  const shard = parseGgufShardName(basename(path));
  if (!shard) return [path];
  return Array.from({ length: shard.count }, (_, i) => join(dirname(path), ggufShardName(shard.base, i, shard.count)));
}

async function openGgufPaths(paths: string[], args: ModelArgs, label: string, ollamaBase: string): Promise<CliModel> {
  const sources = await Promise.all(paths.map((p) => nodeByteSource(p)));
  if (!(await isGguf(sources[0]))) {
    throw new UsageError(`${paths[0]} is not a GGUF file (it does not start with "GGUF") nor a model folder`);
  }
  const tokenizer = args.tokenizer ? await readTokenizer(resolve(args.tokenizer)) : null;
  const opened = await openGgufBase(sources, tokenizer);
  for (const problem of opened.gguf.tokenizer.problems) {
    process.stderr.write(`tokenizer: ${problem}; pass the model's tokenizer.json with --tokenizer for exact tokens\n`);
  }
  return { opened, source: null, label, ollamaBase };
}

async function openOllama(store: string, name: string, args: ModelArgs): Promise<CliModel> {
  const manifests = join(store, 'manifests');
  const listed = (await exists(manifests)) ? ollamaModelsIn((await listFiles(manifests, 4)).map((p) => relative(store, p))) : [];
  const blob = await resolveOllamaModel(nodeFileSource(store), name, listed);
  for (const note of blob.notes) process.stderr.write(`${note}\n`);
  return openGgufPaths([join(store, blob.blobPath)], args, name, name);
}

export async function openCliModel(args: ModelArgs): Promise<CliModel> {
  if (args['ollama-model']) return openOllama(resolve(args.model ?? (await defaultStore())), args['ollama-model'], args);
  if (!args.model) throw new UsageError('give the model: --model <folder | file.gguf | Ollama blob> or --ollama-model <name>');
  const path = resolve(args.model);
  if (!(await exists(path))) throw new UsageError(`--model ${args.model}: no such file or folder`);
  if (!(await stat(path)).isDirectory()) {
    const files = await ggufFiles(path);
    return openGgufPaths(files, args, basename(path).replace(/\.gguf$/, ''), path);
  }
  if (await exists(join(path, 'config.json'))) {
    if (args.tokenizer) throw new UsageError('--tokenizer is for GGUF models; a Hugging Face folder has its own tokenizer.json');
    const source = nodeFileSource(path);
    return { opened: await openModel(source), source, label: basename(path), ollamaBase: basename(path) };
  }
  if (await exists(join(path, 'manifests'))) {
    const models = ollamaModelsIn((await listFiles(join(path, 'manifests'), 4)).map((p) => relative(path, p)));
    if (models.length === 1) return openOllama(path, models[0].name, args);
    throw new UsageError(
      `${path} is an Ollama store; choose its model with --ollama-model <name>` +
        (models.length ? ` (it has ${models.map((m) => m.name).join(', ')})` : ' (it has no models yet)'),
    );
  }
  const ggufs = (await readdir(path)).filter((f) => f.endsWith('.gguf')).sort();
  const shards = new Set(ggufs.map((f) => parseGgufShardName(f)?.base ?? f));
  if (ggufs.length === 0 || shards.size !== 1) {
    const found = ggufs.length ? `several GGUF models (${ggufs.join(', ')})` : 'no .gguf file';
    throw new UsageError(`${path} has no config.json, no Ollama manifests/ and ${found}; give the model file itself with --model`);
  }
  const files = await ggufFiles(join(path, ggufs[0]));
  return openGgufPaths(files, args, basename(path), join(path, ggufs[0]));
}

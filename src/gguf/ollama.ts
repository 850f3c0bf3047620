/**
 * Ollama's model store, read to find the GGUF file Ollama runs for a model name. The store is the
 * folder `$OLLAMA_MODELS` (default `~/.ollama/models`; the Linux service uses
 * `/usr/share/ollama/.ollama/models`; Windows `%USERPROFILE%\.ollama\models`):
 *
 *     manifests/<registry>/<namespace>/<model>/<tag>    JSON: { layers: [{ mediaType, digest, size }] }
 *     blobs/sha256-<hex>                                the bytes of each layer
 *
 * `smollm2:135m` is `manifests/registry.ollama.ai/library/smollm2/135m`; `user/model:tag` keeps its
 * namespace; `hf.co/org/repo:Q4_K_M` its registry. The layer of media type
 * `application/vnd.ollama.image.model` is the GGUF (`digest` `sha256:<hex>` names the blob).
 */
import type { FileSource } from '../model/file-source';
import { ModelLoadError } from '../model/errors';

export const OLLAMA_MODEL_LAYER = 'application/vnd.ollama.image.model';
const DEFAULT_REGISTRY = 'registry.ollama.ai';
const DEFAULT_NAMESPACE = 'library';
const PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:([0-9a-f]{64})$/;

export class OllamaStoreError extends ModelLoadError {
  override name = 'OllamaStoreError';
}

export interface OllamaModelEntry {
  /** As `ollama list` shows it: `smollm2:135m`, `user/model:tag`, `hf.co/org/repo:tag`. */
  name: string;
  /** Path of its manifest, relative to the folder the paths were listed from. */
  manifestPath: string;
  /** What precedes `manifests/` in that path (the folder picked may be `.ollama` rather than `models`). */
  root: string;
}

export interface OllamaModelBlob {
  name: string;
  /** Path of the GGUF blob, relative to the same folder as the manifest's path. */
  blobPath: string;
  /** The blob's size as the manifest states it. */
  size: number | null;
  /** What else the manifest holds that webtune does not use, one sentence each. */
  notes: string[];
}

/** `manifests/<registry>/<namespace>/<model>/<tag>` for a model name (tag `latest` when none is given). */
export function ollamaManifestPath(name: string): string {
  const trimmed = name.trim();
  const colon = trimmed.lastIndexOf(':');
  const slash = trimmed.lastIndexOf('/');
  const [path, tag] = colon > slash ? [trimmed.slice(0, colon), trimmed.slice(colon + 1)] : [trimmed, 'latest'];
  const parts = path.split('/');
  const valid = parts.length >= 1 && parts.length <= 3 && parts.every((p) => PART.test(p)) && TAG.test(tag);
  if (!valid) {
    throw new OllamaStoreError(
      `"${name}" is not an Ollama model name; write it as \`ollama list\` shows it, e.g. smollm2:135m or user/model:tag.`,
    );
  }
  const [registry, namespace, model] =
    parts.length === 3 ? parts : parts.length === 2 ? [DEFAULT_REGISTRY, ...parts] : [DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0]];
  return `manifests/${registry}/${namespace}/${model}/${tag}`;
}

/** The models whose manifests are among `paths` (file paths under a store, or under a folder above it). */
export function ollamaModelsIn(paths: Iterable<string>): OllamaModelEntry[] {
  const models: OllamaModelEntry[] = [];
  for (const p of paths) {
    const normal = p.replace(/\\/g, '/');
    const segments = normal.split('/');
    const at = segments.length - 5;
    if (at < 0 || segments[at] !== 'manifests') continue;
    const [registry, namespace, model, tag] = segments.slice(at + 1);
    if (![registry, namespace, model].every((x) => PART.test(x)) || !TAG.test(tag)) continue;
    const root = segments.slice(0, at).join('/');
    const name =
      registry === DEFAULT_REGISTRY
        ? `${namespace === DEFAULT_NAMESPACE ? '' : `${namespace}/`}${model}:${tag}`
        : `${registry}/${namespace}/${model}:${tag}`;
    models.push({ name, manifestPath: normal, root: root ? `${root}/` : '' });
  }
  return models.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The GGUF blob a manifest names (and what else it holds); `root` is what precedes `manifests/` in its path. */
export function ollamaModelBlob(manifest: unknown, name: string, root = ''): OllamaModelBlob {
  const bad = (problem: string): never => {
    throw new OllamaStoreError(`The Ollama manifest of ${name} ${problem}; run \`ollama pull ${name}\` again.`);
  };
  if (!isRecord(manifest) || !Array.isArray(manifest.layers)) return bad('has no "layers" list');
  const layers = manifest.layers.filter(isRecord);
  const models = layers.filter((l) => l.mediaType === OLLAMA_MODEL_LAYER);
  if (models.length !== 1) return bad(`has ${models.length} layers of type ${OLLAMA_MODEL_LAYER}, not one`);
  const digest = DIGEST.exec(String(models[0].digest));
  if (!digest) return bad(`names the model layer ${JSON.stringify(models[0].digest)}, not a sha256:<hex> digest`);
  const notes: string[] = [];
  const adapters = layers.filter((l) => l.mediaType === 'application/vnd.ollama.image.adapter').length;
  if (adapters) {
    notes.push(
      `Ollama runs ${name} with ${adapters} adapter layer(s) on top of this GGUF; webtune trains against the GGUF alone, ` +
        'so give Ollama the base model this one was created FROM.',
    );
  }
  if (layers.some((l) => l.mediaType === 'application/vnd.ollama.image.projector')) {
    notes.push(`${name} has a vision projector layer; webtune uses only the language model.`);
  }
  const size = typeof models[0].size === 'number' ? models[0].size : null;
  return { name, blobPath: `${root}blobs/sha256-${digest[1]}`, size, notes };
}

/** The GGUF blob of model `name` in the Ollama store `source` (the `models` folder). */
export async function resolveOllamaModel(source: FileSource, name: string, listed?: OllamaModelEntry[]): Promise<OllamaModelBlob> {
  const manifestPath = ollamaManifestPath(name);
  if (!(await source.has(manifestPath))) {
    const known = listed?.map((m) => m.name) ?? [];
    throw new OllamaStoreError(
      `${source.description} has no Ollama model ${name} (no ${manifestPath}). ` +
        (known.length ? `It has: ${known.join(', ')}.` : `Pull it first: ollama pull ${name}.`),
    );
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(new TextDecoder().decode(await source.read(manifestPath)));
  } catch {
    throw new OllamaStoreError(`The Ollama manifest ${manifestPath} is not valid JSON; run \`ollama pull ${name}\` again.`);
  }
  const blob = ollamaModelBlob(manifest, name);
  if (!(await source.has(blob.blobPath))) {
    throw new OllamaStoreError(
      `The Ollama manifest of ${name} names ${blob.blobPath}, which is missing from ${source.description}; ` +
        `run \`ollama pull ${name}\` again.`,
    );
  }
  return blob;
}

/**
 * The model step's Ollama part: recognising Ollama's models folder among picked files, letting the
 * user choose one of its models, and finding that model's GGUF blob through its manifest (read
 * here, in the page: a few hundred bytes of JSON). Only the blob then goes to the engine, which
 * tells it is a GGUF by its magic. Also the explanation of where Ollama keeps models.
 */
import { type OllamaModelEntry, ollamaModelBlob, ollamaModelsIn } from '../../gguf/ollama';
import { el } from '../dom';

export interface PickedFile {
  path: string;
  file: File;
}

export interface OllamaStore {
  models: OllamaModelEntry[];
  byPath: Map<string, File>;
}

/** The picked files as an Ollama store (they hold manifests/ and blobs/), or null. */
export function ollamaStore(files: PickedFile[]): OllamaStore | null {
  const byPath = new Map(files.map((f) => [f.path.replace(/\\/g, '/'), f.file]));
  const models = ollamaModelsIn(byPath.keys()).filter((m) => [...byPath.keys()].some((p) => p.startsWith(`${m.root}blobs/sha256-`)));
  return models.length ? { models, byPath } : null;
}

/** The chosen model's GGUF blob among the picked files, and what its manifest says webtune does not use. */
export async function ollamaBlob(store: OllamaStore, model: OllamaModelEntry): Promise<{ file: PickedFile; notes: string[] }> {
  const manifest = store.byPath.get(model.manifestPath)!;
  let json: unknown;
  try {
    json = JSON.parse(await manifest.text());
  } catch {
    throw new Error(`The Ollama manifest of ${model.name} is not valid JSON; run \`ollama pull ${model.name}\` again.`);
  }
  const blob = ollamaModelBlob(json, model.name, model.root);
  const file = store.byPath.get(blob.blobPath);
  if (!file) {
    throw new Error(
      `The manifest of ${model.name} names ${blob.blobPath}, which is not among the picked files; pick the whole models folder.`,
    );
  }
  return { file: { path: blob.blobPath.split('/').pop()!, file }, notes: blob.notes };
}

/** Where Ollama keeps a model's GGUF, for the model step. */
export function ollamaHelp(): HTMLElement {
  const code = (text: string) => el('code', {}, text);
  return el(
    'details',
    { class: 'help', 'data-testid': 'ollama-help' },
    el('summary', {}, 'Train on a model you run in Ollama'),
    el(
      'p',
      {},
      'Ollama keeps each model as a GGUF file in its models folder: ',
      code('~/.ollama/models'),
      ' on macOS and Linux (',
      code('/usr/share/ollama/.ollama/models'),
      ' when Ollama runs as the Linux service), ',
      code('C:\\Users\\<you>\\.ollama\\models'),
      ' on Windows, or the folder ',
      code('OLLAMA_MODELS'),
      ' names when it is set.',
    ),
    el(
      'p',
      {},
      'In it, ',
      code('manifests/registry.ollama.ai/library/<model>/<tag>'),
      ' is a small JSON file whose layer of type ',
      code('application/vnd.ollama.image.model'),
      ' names the GGUF by its digest ',
      code('sha256:<hex>'),
      '; the file itself is ',
      code('blobs/sha256-<hex>'),
      ', without an extension. ',
      code('ollama show --modelfile <model>'),
      ' prints that path on its FROM line.',
    ),
    el(
      'p',
      {},
      'Choose the models folder above and then the model, or choose the blob file itself with "Choose a GGUF file". ',
      'The folder is hidden: press Cmd+Shift+. in the macOS file dialog, Ctrl+H in Linux ones, or type the path on Windows. ',
      'Only the chosen model is read; the browser never uploads it anywhere.',
    ),
  );
}

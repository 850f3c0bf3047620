/**
 * A small Ollama model store on disk, laid out as Ollama writes it: for each model a manifest
 * `manifests/<registry>/<namespace>/<model>/<tag>` whose `application/vnd.ollama.image.model`
 * layer names the GGUF by its sha256, the GGUF itself as `blobs/sha256-<hex>`, and a template
 * layer beside it (as `ollama pull` leaves one).
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ollamaManifestPath } from '../../src/gguf/ollama';

async function blob(store: string, bytes: Uint8Array): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  await mkdir(path.join(store, 'blobs'), { recursive: true });
  await writeFile(path.join(store, 'blobs', `sha256-${hex}`), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Writes the models into `store` (created if needed); returns each GGUF blob's path. */
export async function writeOllamaStore(store: string, models: { name: string; gguf: Uint8Array }[]): Promise<string[]> {
  const blobs: string[] = [];
  for (const m of models) {
    const model = await blob(store, m.gguf);
    const template = await blob(store, new TextEncoder().encode('{{ .Prompt }}'));
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', ...(await blob(store, new TextEncoder().encode('{}'))) },
      layers: [
        { mediaType: 'application/vnd.ollama.image.model', ...model },
        { mediaType: 'application/vnd.ollama.image.template', ...template },
      ],
    };
    const file = path.join(store, ollamaManifestPath(m.name));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify(manifest));
    blobs.push(path.join(store, 'blobs', `sha256-${model.digest.slice('sha256:'.length)}`));
  }
  return blobs;
}

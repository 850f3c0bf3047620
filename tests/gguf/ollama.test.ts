/** Ollama's model store: model names to manifests, manifests to the GGUF blob, and the refusals that say what to do. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ollamaManifestPath, ollamaModelBlob, ollamaModelsIn, OllamaStoreError, resolveOllamaModel } from '../../src/gguf/ollama';
import { nodeFileSource } from '../../src/model/node-file-source';
import { writeOllamaStore } from './ollama-store';

const HEX = `${'c0ffee'.repeat(10)}c0fe`;
const layer = (mediaType: string, digest = `sha256:${HEX}`) => ({ mediaType, digest, size: 123 });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-ollama-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('model names and manifests', () => {
  it('maps names as `ollama list` shows them to manifest paths, tag latest by default', () => {
    expect(ollamaManifestPath('smollm2:135m')).toBe('manifests/registry.ollama.ai/library/smollm2/135m');
    expect(ollamaManifestPath('llama3.2')).toBe('manifests/registry.ollama.ai/library/llama3.2/latest');
    expect(ollamaManifestPath('me/zog:v1')).toBe('manifests/registry.ollama.ai/me/zog/v1');
    expect(ollamaManifestPath('hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M')).toBe(
      'manifests/hf.co/bartowski/SmolLM2-135M-Instruct-GGUF/Q4_K_M',
    );
    for (const bad of ['', '../etc:passwd', 'a/b/c/d', 'model:', 'we ird'])
      expect(() => ollamaManifestPath(bad), bad).toThrow(OllamaStoreError);
  });

  it('lists the models of a store from file paths, under the models folder or a folder above it', () => {
    const paths = [
      'manifests/registry.ollama.ai/library/smollm2/135m',
      'manifests/registry.ollama.ai/me/zog/v1',
      'manifests/hf.co/org/repo/Q4_K_M',
      `blobs/sha256-${HEX}`,
      'manifests/too/short',
    ];
    expect(ollamaModelsIn(paths).map((m) => m.name)).toEqual(['hf.co/org/repo:Q4_K_M', 'me/zog:v1', 'smollm2:135m']);
    const above = ollamaModelsIn(paths.map((p) => `.ollama/models/${p}`));
    expect(above.map((m) => [m.name, m.root])).toContainEqual(['smollm2:135m', '.ollama/models/']);
  });

  it("finds the GGUF layer's blob and says what else the manifest holds", () => {
    const blob = ollamaModelBlob(
      { layers: [layer('application/vnd.ollama.image.template'), layer('application/vnd.ollama.image.model')] },
      'x',
    );
    expect(blob).toEqual({ name: 'x', blobPath: `blobs/sha256-${HEX}`, size: 123, notes: [] });
    const withAdapter = ollamaModelBlob(
      { layers: [layer('application/vnd.ollama.image.model'), layer('application/vnd.ollama.image.adapter')] },
      'zog',
      'models/',
    );
    expect(withAdapter.blobPath).toBe(`models/blobs/sha256-${HEX}`);
    expect(withAdapter.notes.join(' ')).toMatch(/adapter layer.*trains against the GGUF alone/);
    const refusals: [unknown, RegExp][] = [
      [{}, /no "layers" list/],
      [{ layers: [] }, /0 layers of type application\/vnd\.ollama\.image\.model/],
      [{ layers: [layer('application/vnd.ollama.image.model', 'sha256:../../x')] }, /not a sha256:<hex> digest/],
    ];
    for (const [manifest, text] of refusals) {
      expect(() => ollamaModelBlob(manifest, 'm')).toThrow(OllamaStoreError);
      expect(() => ollamaModelBlob(manifest, 'm')).toThrow(text);
      expect(() => ollamaModelBlob(manifest, 'm')).toThrow(/ollama pull m/);
    }
  });
});

describe('a store on disk', () => {
  it('resolves a model to its blob; a missing model lists the ones there; a missing blob says to pull again', async () => {
    const store = path.join(dir, 'models');
    const [blobFile] = await writeOllamaStore(store, [
      { name: 'stories:260k', gguf: new TextEncoder().encode('GGUF fake') },
      { name: 'me/other', gguf: new TextEncoder().encode('GGUF other') },
    ]);
    const source = nodeFileSource(store);
    const resolved = await resolveOllamaModel(source, 'stories:260k');
    expect(path.join(store, resolved.blobPath)).toBe(blobFile);
    const listed = ollamaModelsIn(['manifests/registry.ollama.ai/library/stories/260k', 'manifests/registry.ollama.ai/me/other/latest']);
    await expect(resolveOllamaModel(source, 'llama3', listed)).rejects.toThrow(
      /has no Ollama model llama3 .*It has: me\/other:latest, stories:260k/,
    );
    await rm(blobFile);
    await expect(resolveOllamaModel(source, 'stories:260k')).rejects.toThrow(
      /names blobs\/sha256-[0-9a-f]{64}, which is missing.*ollama pull stories:260k/,
    );
  });
});

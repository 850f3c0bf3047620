import * as Comlink from 'comlink';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNodeDevice } from '../../src/gpu/node-device';
import type { WebtuneEngineApi } from '../../src/app/api';
import { engineOver } from '../../src/worker/client';
import { WebtuneEngine } from '../../src/app/engine';
import { freshDbName } from '../storage/fixtures';
import { modelFiles } from '../app/fixtures';

/** The real engine on Dawn, exposed through comlink at one end of a MessageChannel, as worker.ts exposes it. */
function exposedEngine(): MessagePort {
  const { port1, port2 } = new MessageChannel();
  Comlink.expose(new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() }), port1);
  opened.push(port1, port2);
  return port2;
}

const opened: MessagePort[] = [];
afterEach(() => {
  for (const port of opened.splice(0)) port.close();
});

describe('engine client', () => {
  it('passes a plain progress callback across the channel', async () => {
    const engine = engineOver(exposedEngine());
    expect((await engine.init()).state).toBe('ready');
    const messages: string[] = [];
    const model = await engine.loadLocalModel(modelFiles(), 'stories260K', (message) => messages.push(message));
    expect(model).toMatchObject({ name: 'stories260K', layers: 5, vocab: 512 });
    // Callbacks come back on their own channel, so the last ones may land after the result.
    await vi.waitFor(() => expect(messages.some((m) => m.startsWith('Uploading weights to the GPU'))).toBe(true));
    expect(messages[0]).toBe('Reading the model files: config and tokenizer, safetensors or GGUF headers…');
  });

  it('is needed: a bare comlink remote cannot take a plain function', async () => {
    const bare = Comlink.wrap<WebtuneEngineApi>(exposedEngine());
    await expect(bare.loadLocalModel([], 'none', (() => {}) as never)).rejects.toMatchObject({ name: 'DataCloneError' });
  });

  it('is not thenable, so an async function can return it', async () => {
    const engine = engineOver(exposedEngine());
    expect(await Promise.resolve(engine)).toBe(engine);
  });
});

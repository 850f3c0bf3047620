import { gguf } from '@huggingface/gguf';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterTensors } from '../../src/export/adapter';
import { AdapterImportError } from '../../src/export/errors';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, peftAdapterFiles, readPeftAdapter } from '../../src/export/peft';
import { unzipToFileSource } from '../../src/export/zip';
import { createNodeDevice } from '../../src/gpu/node-device';
import { parseModelConfig } from '../../src/model/config';
import { writeSafetensors } from '../../src/model/safetensors';
import { openWebtuneDb } from '../../src/storage/db';
import { EngineStateError, WebtuneEngine } from '../../src/app/engine';
import { expectBitIdentical, expectRefusal, goldenAdapter, randomAdapter, removeTempDirs, storiesConfig, tempDir } from '../export/helpers';
import { STORIES_260K } from '../helpers/paths';
import { freshDbName } from '../storage/fixtures';
import { engineWithStories, peftFolderEntries, peftZip } from './fixtures';

let golden: AdapterTensors;
let engine: WebtuneEngine;
let dbName: string;

beforeAll(async () => {
  golden = await goldenAdapter();
  ({ engine, dbName } = await engineWithStories());
});
afterAll(removeTempDirs);

async function storedTensors(id: string) {
  const db = await openWebtuneDb(dbName);
  try {
    return new Map((await db.getAdapter(id)).tensors.map((t) => [t.name, t]));
  } finally {
    db.close();
  }
}

function expectSameTensors(actual: Map<string, { shape: number[]; data: Float32Array }>, expected: AdapterTensors['tensors']): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, t] of expected) {
    expect(actual.get(name)!.shape).toEqual(t.shape);
    expectBitIdentical(actual.get(name)!.data, t.data);
  }
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('importing adapters into the library', () => {
  it('imports a PEFT zip, lists it, and its export imports again with bit-identical A and B', async () => {
    const imported = await engine.importAdapter(peftZip(golden, 'golden-qkv.zip'));
    expect(imported).toMatchObject({
      name: 'golden-qkv',
      baseModel: 'stories260K',
      runId: null,
      imported: { from: 'golden-qkv.zip', declaredBaseModel: 'stories260K' },
      config: { r: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj'], useRslora: false },
    });
    expect(await engine.listAdapters()).toContainEqual(imported);
    expectSameTensors(await storedTensors(imported.id), golden.tensors);

    const exported = await engine.exportAdapter({ adapterId: imported.id, format: 'peft' });
    expect(exported.fileName).toBe('golden-qkv.zip');
    expect(Object.keys(unzipSync(exported.bytes as Uint8Array)).sort()).toEqual([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
    const again = await engine.importAdapter(new Blob([exported.bytes as Uint8Array<ArrayBuffer>]), 'round trip');
    expect(again.name).toBe('round trip');
    expectSameTensors(await storedTensors(again.id), golden.tensors);
  });

  it('imports the picked files of a PEFT folder under the folder name', async () => {
    const imported = await engine.importAdapter(peftFolderEntries(golden, 'my-adapter'));
    expect(imported).toMatchObject({ name: 'my-adapter', imported: { from: 'my-adapter' } });
    expectSameTensors(await storedTensors(imported.id), golden.tensors);
  });

  describe('refuses bad inputs with the reason and leaves the library unchanged', () => {
    const files = () => peftAdapterFiles(golden, { baseModel: 'stories260K' });
    const config = () => JSON.parse(new TextDecoder().decode(files()[ADAPTER_CONFIG_FILE]));

    async function expectRefused(source: Parameters<WebtuneEngine['importAdapter']>[0], ...fragments: (string | RegExp)[]) {
      const before = await engine.listAdapters();
      await expectRefusal(() => engine.importAdapter(source), AdapterImportError, ...fragments);
      expect(await engine.listAdapters()).toEqual(before);
    }

    it('a truncated zip', async () => {
      const zip = new Uint8Array(await peftZip(golden, 'cut.zip').arrayBuffer());
      await expectRefused(
        new File([zip.slice(0, Math.floor(zip.length / 2))], 'cut.zip'),
        'cut.zip is not a valid zip file',
        'truncated or damaged',
      );
    });

    it('an adapter for another base (hidden size 96, not 64)', async () => {
      const wider = parseModelConfig({ ...JSON.parse(readFileSync(path.join(STORIES_260K, 'config.json'), 'utf8')), hidden_size: 96 });
      const other = randomAdapter(wider, { r: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'v_proj'] });
      await expectRefused(peftZip(other, 'wide.zip'), 'has shape [4, 96]', 'needs [4, 64]', 'trained for a different base model');
    });

    it('an unknown peft_type', async () => {
      const entries = peftFolderEntries(golden, 'ia3', { ...files(), [ADAPTER_CONFIG_FILE]: encode({ ...config(), peft_type: 'IA3' }) });
      await expectRefused(entries, 'peft_type "IA3" is not supported', 'LoRA adapters only');
    });

    it('DoRA magnitude tensors', async () => {
      const tensors = [...golden.tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
      tensors.push({
        name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector',
        shape: [64],
        data: new Float32Array(64).fill(1),
      });
      const entries = peftFolderEntries(golden, 'dora', {
        ...files(),
        [ADAPTER_WEIGHTS_FILE]: writeSafetensors(tensors, { format: 'pt' }),
      });
      await expectRefused(entries, 'DoRA magnitude vector', 'only plain LoRA');
    });

    it('weights that are not safetensors', async () => {
      const pickle = new Uint8Array([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]);
      await expectRefused(
        peftFolderEntries(golden, 'bin', { [ADAPTER_CONFIG_FILE]: files()[ADAPTER_CONFIG_FILE], 'adapter_model.bin': pickle } as never),
        'has only adapter_model.bin, a PyTorch pickle',
        'safe_serialization=True',
      );
      await expectRefused(
        peftFolderEntries(golden, 'garbage', { ...files(), [ADAPTER_WEIGHTS_FILE]: pickle }),
        `${ADAPTER_WEIGHTS_FILE} in garbage`,
      );
    });

    it('a different rank than adapter_config.json says', async () => {
      const entries = peftFolderEntries(golden, 'rank', { ...files(), [ADAPTER_CONFIG_FILE]: encode({ ...config(), r: 8 }) });
      await expectRefused(entries, "its rank is 4 but the adapter's r is 8");
    });
  });

  it('needs a loaded model to check an import against', async () => {
    const bare = new WebtuneEngine({ requestDevice: createNodeDevice, dbName: freshDbName() });
    await expectRefusal(() => bare.importAdapter(peftZip(golden, 'a.zip')), EngineStateError, 'Load the base model first');
    expect(await bare.listAdapters()).toEqual([]);
  });
});

describe('exporting library adapters in every format', () => {
  let id: string;
  beforeAll(async () => {
    id = (await engine.importAdapter(peftZip(golden, 'Zog Helper.zip'))).id;
  });

  it('PEFT: a zip of the two files, with the Modelfile and the commands', async () => {
    const out = await engine.exportAdapter({ adapterId: id, format: 'peft', ollamaBase: 'stories:260k' });
    const reread = await readPeftAdapter(unzipToFileSource(out.bytes as Uint8Array, out.fileName), await storiesConfig());
    expectSameTensors(reread.tensors, golden.tensors);
    expect(out.fileName).toBe('zog-helper.zip');
    expect(out.ollama.modelfile).toBe('FROM stories:260k\nADAPTER ./zog-helper\n');
    expect(out.ollama.commands).toEqual([
      'unzip zog-helper.zip -d zog-helper',
      'ollama create zog-helper -f Modelfile',
      'ollama run zog-helper',
    ]);
  });

  it('GGUF: a LoRA file that an independent parser reads, with alpha and 30 tensors', async () => {
    const out = await engine.exportAdapter({ adapterId: id, format: 'gguf' });
    expect(out.fileName).toBe('zog-helper.gguf');
    const file = path.join(await tempDir('page-gguf'), out.fileName);
    await writeFile(file, out.bytes as Uint8Array);
    const parsed = await gguf(file, { allowLocalFile: true });
    const metadata = parsed.metadata as Record<string, unknown>;
    expect(metadata['general.type']).toBe('adapter');
    expect(metadata['adapter.lora.alpha']).toBe(8);
    expect(parsed.tensorInfos.length).toBe(5 * 3 * 2);
    expect(out.ollama.modelfile).toBe('FROM stories260K\nADAPTER ./zog-helper.gguf\n');
    expect(out.ollama.commands).toEqual(['ollama create zog-helper -f Modelfile', 'ollama run zog-helper']);
  });

  it('merged: the base folder with the adapter merged in, zipped, in the base dtype or f32', async () => {
    for (const dtype of ['same', 'f32'] as const) {
      const out = await engine.exportAdapter({ adapterId: id, format: 'merged', dtype });
      expect(out.fileName).toBe('zog-helper-merged.zip');
      const files = unzipSync(out.bytes as Uint8Array);
      expect(Object.keys(files)).toEqual(
        expect.arrayContaining([
          'zog-helper-merged/config.json',
          'zog-helper-merged/model.safetensors',
          'zog-helper-merged/tokenizer.json',
        ]),
      );
      const cfg = JSON.parse(new TextDecoder().decode(files['zog-helper-merged/config.json']));
      if (dtype === 'f32') expect(cfg.torch_dtype).toBe('float32');
      expect(out.ollama.modelfile).toBe('FROM ./zog-helper-merged\n');
      expect(out.ollama.commands[0]).toBe('unzip zog-helper-merged.zip');
    }
  });

  it('offers no PEFT Modelfile for an alpha Ollama cannot read, and points to the GGUF adapter', async () => {
    const fractional = { ...golden, config: { ...golden.config, alpha: 12.5 } };
    const { id: fid } = await engine.importAdapter(peftZip(fractional, 'fractional.zip'));
    const peft = await engine.exportAdapter({ adapterId: fid, format: 'peft' });
    expect(peft.ollama.modelfile).toBeNull();
    expect(peft.ollama.notes.join(' ')).toMatch(/lora_alpha is 12.5.*Export the GGUF adapter/);
    expect((await engine.exportAdapter({ adapterId: fid, format: 'gguf' })).ollama.modelfile).toBe(
      'FROM stories260K\nADAPTER ./fractional.gguf\n',
    );
  });
});

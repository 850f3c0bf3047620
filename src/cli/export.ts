import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ggufAdapterFile } from '../export/gguf';
import { mergedModelFiles } from '../export/merge';
import { ollamaInstructions, ollamaModelfile } from '../export/modelfile';
import { writeFolder } from '../export/node-folder';
import { peftAdapterFiles, readPeftAdapter } from '../export/peft';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import { LoraAdapter } from '../lora/adapter';
import { LlamaModel } from '../model/llama';
import { nodeFileSource } from '../model/node-file-source';
import { openModel } from '../model/weights';
import { makeBatch } from '../train/batch';
import { UsageError } from './usage';

/** `export --model <dir> --adapter <dir> --format peft|gguf|merged --out <path> [--dtype same|f32] [--base <name>]` */
export async function exportCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      adapter: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      dtype: { type: 'string', default: 'same' },
      base: { type: 'string' },
    },
  });
  if (!values.model || !values.adapter || !values.out) throw new UsageError('export needs --model <dir> --adapter <dir> --out <path>');
  if (!['peft', 'gguf', 'merged'].includes(values.format ?? '')) throw new UsageError('--format must be peft, gguf or merged');
  if (!['same', 'f32'].includes(values.dtype!)) throw new UsageError('--dtype must be same or f32');
  const modelDir = resolve(values.model);
  const opened = await openModel(nodeFileSource(modelDir));
  const adapter = await readPeftAdapter(nodeFileSource(resolve(values.adapter)), opened.config);
  const out = resolve(values.out);
  const base = values.base ?? basename(modelDir);
  let written: string[];
  let ollama = '';
  switch (values.format) {
    case 'peft':
      written = await writeFolder(out, { ...peftAdapterFiles(adapter, { baseModel: base }), Modelfile: modelfile(base, '.') });
      ollama = instructions(opened.config.architecture, 'peft', basename(out), base, adapter.config);
      break;
    case 'gguf': {
      const file = `${basename(out)}.gguf`;
      written = await writeFolder(out, {
        [file]: ggufAdapterFile(adapter, opened.config, { name: basename(out) }),
        Modelfile: modelfile(base, `./${file}`),
      });
      ollama = instructions(opened.config.architecture, 'gguf', file, base, adapter.config);
      break;
    }
    default:
      written = await writeFolder(out, mergedModelFiles(nodeFileSource(modelDir), adapter, { dtype: values.dtype as 'same' | 'f32' }));
  }
  if (ollama) process.stderr.write(`${ollama}\n`);
  process.stdout.write(`${JSON.stringify({ format: values.format, out, files: written })}\n`);
  return 0;
}

function modelfile(base: string, adapterPath: string): Uint8Array {
  return new TextEncoder().encode(ollamaModelfile({ base, adapterPath }));
}

/** Ollama cannot take every adapter (qwen2 safetensors, fractional alpha): say why instead of failing the export. */
function instructions(...[architecture, adapterKind, folderName, baseModel, lora]: [
  Parameters<typeof ollamaInstructions>[0]['architecture'],
  'peft' | 'gguf',
  string,
  string,
  Parameters<typeof ollamaInstructions>[0]['lora'],
]): string {
  try {
    return ollamaInstructions({ architecture, adapterKind, folderName, baseModel, lora });
  } catch (error) {
    return `Ollama: ${(error as Error).message}`;
  }
}

/** `logits --model <dir> [--adapter <dir>] --ids 1,2,3`: the last position's logits as JSON, for cross-checks with other runtimes. */
export async function logitsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, adapter: { type: 'string' }, ids: { type: 'string' } } });
  if (!values.model || !values.ids) throw new UsageError('logits needs --model <dir> --ids 1,2,3');
  const ids = values.ids.split(',').map((text) => Number(text.trim()));
  const opened = await openModel(nodeFileSource(resolve(values.model)));
  if (ids.some((id) => !Number.isInteger(id) || id < 0 || id >= opened.config.vocabSize)) {
    throw new UsageError(`--ids must be token ids in [0, ${opened.config.vocabSize})`);
  }
  const gpu = new Gpu(await createNodeDevice());
  const model = await LlamaModel.load(gpu, opened.weights);
  let adapter: LoraAdapter | null = null;
  if (values.adapter) {
    const imported = await readPeftAdapter(nodeFileSource(resolve(values.adapter)), opened.config);
    adapter = LoraAdapter.fromTensors(gpu, opened.config, imported.config, imported.tensors, values.adapter);
  }
  const logits = await model.lastPositionLogits(makeBatch([ids]), adapter);
  process.stdout.write(`${JSON.stringify(Array.from(logits))}\n`);
  return 0;
}

import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ollamaSetupText } from '../export/modelfile';
import { writeFolder } from '../export/node-folder';
import { exportAdapter, type ExportFormat } from '../export/service';
import { nodeFileSource } from '../model/node-file-source';
import { openModel } from '../model/weights';
import { makeBatch } from '../train/batch';
import { loadAdapter, loadOnGpu, readAdapterFolder, WEIGHTS_OPTION, weightPrecision } from './common';
import { UsageError } from './usage';

/** `export --model <dir> --adapter <dir> --format peft|gguf|merged --out <dir> [--dtype same|f32] [--base <name>]` */
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
  const source = nodeFileSource(modelDir);
  const opened = await openModel(source);
  const adapter = await readAdapterFolder(values.adapter, opened);
  const out = resolve(values.out);
  const base = values.base ?? basename(modelDir);
  const exported = await exportAdapter(
    adapter,
    { config: opened.config, source },
    {
      format: values.format as ExportFormat,
      name: basename(out),
      peftBaseModel: base,
      ollamaBase: base,
      dtype: values.dtype as 'same' | 'f32',
      target: 'folder',
    },
  );
  const written = await writeFolder(out, exported.files);
  process.stderr.write(`${ollamaSetupText(exported.ollama)}\n`);
  process.stdout.write(`${JSON.stringify({ format: values.format, out, files: written })}\n`);
  return 0;
}

/** `logits --model <dir> [--adapter <dir>] --ids 1,2,3`: the last position's logits as JSON, for cross-checks with other runtimes. */
export async function logitsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string' }, adapter: { type: 'string' }, ids: { type: 'string' }, ...WEIGHTS_OPTION },
  });
  if (!values.model || !values.ids) throw new UsageError('logits needs --model <dir> --ids 1,2,3');
  const precision = weightPrecision(values.weights);
  const ids = values.ids.split(',').map((text) => Number(text.trim()));
  const opened = await openModel(nodeFileSource(resolve(values.model)));
  if (ids.some((id) => !Number.isInteger(id) || id < 0 || id >= opened.config.vocabSize)) {
    throw new UsageError(`--ids must be token ids in [0, ${opened.config.vocabSize})`);
  }
  const { gpu, model } = await loadOnGpu(opened, precision);
  const adapter = values.adapter ? await loadAdapter(gpu, values.adapter, opened) : null;
  const logits = await model.lastPositionLogits(makeBatch([ids]), adapter);
  process.stdout.write(`${JSON.stringify(Array.from(logits))}\n`);
  return 0;
}

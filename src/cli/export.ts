import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MERGED_GGUF_TYPES, type MergedGgufType } from '../export/merged-gguf';
import { ollamaSetupText } from '../export/modelfile';
import { writeFolder } from '../export/node-folder';
import { exportAdapter, type ExportFormat } from '../export/service';
import { makeBatch } from '../train/batch';
import { loadAdapter, loadOnGpu, readAdapterFolder, WEIGHTS_OPTION, weightPrecision } from './common';
import { MODEL_OPTIONS, openCliModel } from './model-arg';
import { UsageError } from './usage';

const FORMATS: ExportFormat[] = ['peft', 'gguf', 'merged', 'merged-gguf'];

/**
 * `export --model <model> --adapter <dir> --format peft|gguf|merged|merged-gguf --out <dir>
 * [--dtype same|f32 (merged) | f32|f16|bf16|q8_0 (merged-gguf)] [--base <Ollama model>]`
 */
export async function exportCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MODEL_OPTIONS,
      adapter: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      dtype: { type: 'string' },
      base: { type: 'string' },
    },
  });
  if (!values.adapter || !values.out) throw new UsageError('export needs --model <model> --adapter <dir> --out <path>');
  const format = values.format as ExportFormat;
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be ${FORMATS.join(', ')}`);
  const dtype = values.dtype ?? (format === 'merged-gguf' ? 'f16' : 'same');
  const ggufType = dtype.toUpperCase() as MergedGgufType;
  if (format === 'merged-gguf' && !MERGED_GGUF_TYPES.includes(ggufType))
    throw new UsageError('--dtype of a merged GGUF must be f32, f16, bf16 or q8_0');
  if (format !== 'merged-gguf' && !['same', 'f32'].includes(dtype)) throw new UsageError('--dtype must be same or f32');
  const base = await openCliModel(values);
  const { opened } = base;
  const adapter = await readAdapterFolder(values.adapter, opened);
  const out = resolve(values.out);
  const ollamaBase = values.base ?? base.ollamaBase;
  const exported = await exportAdapter(
    adapter,
    { ...opened, source: base.source, ggufFile: opened.gguf?.file },
    {
      format,
      name: basename(out),
      peftBaseModel: values.base ?? base.label,
      ollamaBase,
      dtype: format === 'merged' ? (dtype as 'same' | 'f32') : undefined,
      ggufType: format === 'merged-gguf' ? ggufType : undefined,
      target: 'folder',
    },
  );
  const written = await writeFolder(out, exported.files);
  process.stderr.write(`${ollamaSetupText(exported.ollama)}\n`);
  process.stdout.write(`${JSON.stringify({ format, out, files: written })}\n`);
  return 0;
}

/** `logits --model <model> [--adapter <dir>] --ids 1,2,3`: the last position's logits as JSON, for cross-checks with other runtimes. */
export async function logitsCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...MODEL_OPTIONS, adapter: { type: 'string' }, ids: { type: 'string' }, ...WEIGHTS_OPTION },
  });
  if (!values.ids) throw new UsageError('logits needs --model <model> --ids 1,2,3');
  const precision = weightPrecision(values.weights);
  const ids = values.ids.split(',').map((text) => Number(text.trim()));
  const { opened } = await openCliModel(values);
  if (ids.some((id) => !Number.isInteger(id) || id < 0 || id >= opened.config.vocabSize)) {
    throw new UsageError(`--ids must be token ids in [0, ${opened.config.vocabSize})`);
  }
  const { gpu, model } = await loadOnGpu(opened, precision);
  const adapter = values.adapter ? await loadAdapter(gpu, values.adapter, opened) : null;
  const logits = await model.lastPositionLogits(makeBatch([ids]), adapter);
  process.stdout.write(`${JSON.stringify(Array.from(logits))}\n`);
  return 0;
}

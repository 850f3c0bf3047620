import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generate } from '../eval/generate';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import { loadGoldenCase } from '../model/golden';
import { nodeFileSource } from '../model/node-file-source';
import { openModel } from '../model/weights';
import { checkGoldenCase } from '../train/golden-check';
import { prepTokenizerFor } from '../train/pipeline';
import { analyzeCommand } from './analyze';
import { loadAdapter, loadOnGpu, nonNegative, positiveInt, WEIGHTS_OPTION, weightPrecision } from './common';
import { evalCommand } from './eval';
import { exportCommand, logitsCommand } from './export';
import { MODEL_OPTIONS, openCliModel } from './model-arg';
import { trainCommand } from './train';
import { USAGE, UsageError } from './usage';

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'golden':
      return golden(rest);
    case 'generate':
      return generateCommand(rest);
    case 'train':
      return trainCommand(rest);
    case 'eval':
      return evalCommand(rest);
    case 'export':
      return exportCommand(rest);
    case 'logits':
      return logitsCommand(rest);
    case 'analyze':
      return analyzeCommand(rest);
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

async function golden(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      models: { type: 'string' },
      recompute: { type: 'string', default: 'off' },
      schedules: { type: 'string', default: 'auto' },
      matmul: { type: 'string', default: 'auto' },
      ...WEIGHTS_OPTION,
    },
    allowPositionals: true,
  });
  const matmul = values.matmul;
  if (matmul !== 'auto' && matmul !== 'vec4' && matmul !== 'tiled' && matmul !== 'direct' && matmul !== 'subgroup') {
    throw new UsageError(`--matmul must be auto, vec4, tiled, direct or subgroup, got "${matmul}"`);
  }
  if (values.recompute !== 'on' && values.recompute !== 'off')
    throw new UsageError(`golden --recompute must be on or off, got "${values.recompute}"`);
  if (positionals.length !== 1) throw new UsageError('golden takes exactly one case directory');
  const schedules = values.schedules;
  if (schedules !== 'auto' && schedules !== 'gpu' && schedules !== 'cpu') {
    throw new UsageError(`--schedules must be auto, gpu or cpu, got "${schedules}"`);
  }
  const precision = weightPrecision(values.weights);
  const caseDir = resolve(positionals[0]);
  const goldenCase = await loadGoldenCase(nodeFileSource(caseDir));
  const modelsDir = resolve(values.models ?? '../shared/models');
  const { weights } = await openModel(nodeFileSource(resolve(modelsDir, goldenCase.model)));
  const gpu = new Gpu(await createNodeDevice());
  gpu.schedules = schedules;
  gpu.matmulSchedule = matmul === 'auto' ? null : matmul;
  const result = await checkGoldenCase(gpu, goldenCase, weights, { recompute: values.recompute === 'on', precision });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}

async function generateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MODEL_OPTIONS,
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string', default: '64' },
      temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      adapter: { type: 'string' },
      ...WEIGHTS_OPTION,
    },
  });
  const precision = weightPrecision(values.weights);
  if (values.prompt === undefined) throw new UsageError('generate needs --prompt <text>');
  const { opened } = await openCliModel(values);
  const { gpu, model } = await loadOnGpu(opened, precision);
  const adapter = values.adapter ? await loadAdapter(gpu, values.adapter, opened) : null;
  const result = await generate(model, prepTokenizerFor(opened).tokenizer, adapter, values.prompt, {
    maxNewTokens: positiveInt(values['max-new-tokens'], '--max-new-tokens'),
    temperature: nonNegative(values.temperature, '--temperature'),
    topP: nonNegative(values['top-p'], '--top-p'),
    seed: positiveInt(values.seed, '--seed', 0),
  });
  process.stdout.write(`${result.text}\n`);
  return 0;
}

import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type ImportReport, parseJsonlBytes } from '../data/jsonl';
import { generate } from '../eval/generate';
import { peftAdapterFiles, readPeftAdapter } from '../export/peft';
import { writeFolder } from '../export/node-folder';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import { LoraAdapter } from '../lora/adapter';
import { loadGoldenCase } from '../model/golden';
import { LlamaModel } from '../model/llama';
import { nodeFileSource } from '../model/node-file-source';
import { TextTokenizer } from '../model/tokenizer';
import { openModel } from '../model/weights';
import { checkGoldenCase } from '../train/golden-check';
import { padTokenId, prepareRunData, prepTokenizerFor } from '../train/pipeline';
import { validateTrainSettings } from '../train/settings';
import { LoraTrainer } from '../train/trainer';
import { analyzeCommand } from './analyze';
import { exportCommand, logitsCommand } from './export';
import { UsageError } from './usage';

const USAGE = `webtune <command> [options]

Commands:
  golden <case-dir> [--models <dir>]
      Runs a golden case (case.json + safetensors) through the engine and prints, as the last
      line, JSON with loss, gradient and AdamW errors against PyTorch. Exit status 0 only when ok.
      The model folder is <models>/<case.model>; --models defaults to ../shared/models.
  generate --model <dir> --prompt <text> [--adapter <dir>] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]
      Prints the model's continuation of the prompt (temperature 0: greedy), with a PEFT adapter when given.
  train --model <dir> --data <train.jsonl> [--eval <eval.jsonl>] --out <adapter-dir>
        [--r 8] [--alpha 16] [--dropout 0] [--targets q_proj,k_proj,v_proj] [--lr 2e-4] [--epochs 3]
        [--batch 4] [--grad-accum 1] [--warmup 0] [--schedule linear|cosine|constant] [--weight-decay 0]
        [--max-grad-norm 1] [--max-length 512] [--eval-fraction 0.1] [--seed 42]
      Trains a LoRA adapter and writes it as a PEFT folder. Last stdout line: JSON with
      eval_loss_before, eval_loss_after, train_loss_first, train_loss_last, steps, tokens_per_s.
  export --model <dir> --adapter <dir> --format peft|gguf|merged --out <path> [--dtype same|f32] [--base <name>]
      Writes the adapter as a PEFT folder or a GGUF LoRA (each with an Ollama Modelfile), or the
      base model with the adapter merged in, as a Hugging Face folder.
  logits --model <dir> [--adapter <dir>] --ids 1,2,3
      Prints the last position's logits as JSON.
  analyze <data.jsonl>
      Prints the dataset's task analysis and training recommendation as JSON.
`;


export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'golden':
      return golden(rest);
    case 'generate':
      return generateCommand(rest);
    case 'train':
      return train(rest);
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
  const { values, positionals } = parseArgs({ args, options: { models: { type: 'string' } }, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError('golden takes exactly one case directory');
  const caseDir = resolve(positionals[0]);
  const goldenCase = await loadGoldenCase(nodeFileSource(caseDir));
  const modelsDir = resolve(values.models ?? '../shared/models');
  const { weights } = await openModel(nodeFileSource(resolve(modelsDir, goldenCase.model)));
  const gpu = new Gpu(await createNodeDevice());
  const result = await checkGoldenCase(gpu, goldenCase, weights);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result.ok ? 0 : 1;
}

async function generateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string', default: '64' },
      temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      adapter: { type: 'string' },
    },
  });
  if (!values.model) throw new UsageError('generate needs --model <dir>');
  if (values.prompt === undefined) throw new UsageError('generate needs --prompt <text>');
  const opened = await openModel(nodeFileSource(resolve(values.model)));
  const tokenizer = TextTokenizer.fromJson(opened.tokenizerJson, opened.tokenizerConfig);
  const gpu = new Gpu(await createNodeDevice());
  const model = await LlamaModel.load(gpu, opened.weights);
  let adapter: LoraAdapter | null = null;
  if (values.adapter) {
    const imported = await readPeftAdapter(nodeFileSource(resolve(values.adapter)), opened.config);
    adapter = LoraAdapter.fromTensors(gpu, opened.config, imported.config, imported.tensors, values.adapter);
  }
  const result = await generate(model, tokenizer, adapter, values.prompt, {
    maxNewTokens: positiveInt(values['max-new-tokens'], '--max-new-tokens'),
    temperature: nonNegative(values.temperature, '--temperature'),
    topP: nonNegative(values['top-p'], '--top-p'),
    seed: positiveInt(values.seed, '--seed', 0),
  });
  process.stdout.write(`${result.text}\n`);
  return 0;
}

async function train(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      eval: { type: 'string' },
      out: { type: 'string' },
      r: { type: 'string' },
      alpha: { type: 'string' },
      dropout: { type: 'string' },
      targets: { type: 'string' },
      lr: { type: 'string' },
      epochs: { type: 'string' },
      batch: { type: 'string' },
      'grad-accum': { type: 'string' },
      warmup: { type: 'string' },
      schedule: { type: 'string' },
      'weight-decay': { type: 'string' },
      'max-grad-norm': { type: 'string' },
      'max-length': { type: 'string' },
      'eval-fraction': { type: 'string' },
      seed: { type: 'string' },
      quiet: { type: 'boolean', default: false },
    },
  });
  if (!values.model) throw new UsageError('train needs --model <dir>');
  if (!values.data) throw new UsageError('train needs --data <train.jsonl>');
  if (!values.out) throw new UsageError('train needs --out <adapter-dir>');
  const num = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  const settings = validateTrainSettings({
    lora: {
      r: num(values.r),
      alpha: num(values.alpha),
      dropout: num(values.dropout),
      targets: values.targets?.split(',').map((t) => t.trim()) as never,
    },
    lr: num(values.lr),
    epochs: num(values.epochs),
    batchSize: num(values.batch),
    gradAccum: num(values['grad-accum']),
    warmupSteps: num(values.warmup),
    schedule: values.schedule as never,
    weightDecay: num(values['weight-decay']),
    maxGradNorm: num(values['max-grad-norm']),
    maxLength: num(values['max-length']),
    evalFraction: num(values['eval-fraction']),
    seed: num(values.seed),
  });
  const log = (line: string) => {
    if (!values.quiet) process.stderr.write(`${line}\n`);
  };

  const modelDir = resolve(values.model);
  const opened = await openModel(nodeFileSource(modelDir));
  const rows = await readDataset(values.data, log);
  const evalRows = values.eval ? await readDataset(values.eval, log) : null;
  const tok = prepTokenizerFor(opened);
  const data = prepareRunData(rows, evalRows, tok, settings);
  log(`${data.train.length} training and ${data.eval.length} eval examples; ${data.truncatedCount} truncated to ${settings.maxLength} tokens`);

  const gpu = new Gpu(await createNodeDevice());
  const model = await LlamaModel.load(gpu, opened.weights);
  const adapter = new LoraAdapter(gpu, opened.config, settings.lora);
  adapter.initPeft(settings.seed);
  log(`LoRA r=${settings.lora.r} alpha=${settings.lora.alpha} on ${settings.lora.targets.join(', ')}: ${adapter.parameterCount} trainable parameters`);
  const trainer = new LoraTrainer(gpu, model, adapter, settings, data, padTokenId(tok));
  const evalBefore = await trainer.evalLoss();
  const result = await trainer.run({
    onProgress: (p) =>
      log(
        `step ${p.step}/${p.totalSteps} epoch ${p.epoch.toFixed(2)} loss ${p.loss.toFixed(4)}` +
          (p.evalLoss !== undefined ? ` eval ${p.evalLoss.toFixed(4)}` : '') +
          ` lr ${p.lr.toExponential(2)} ${Math.round(p.tokensPerSecond)} tok/s`,
      ),
  });
  const evalAfter = result.evalLoss ?? (await trainer.evalLoss());
  const files = peftAdapterFiles(
    { config: settings.lora, tensors: await adapter.readTensors() },
    { baseModel: String(opened.tokenizerConfig.name_or_path ?? basename(modelDir)) },
  );
  await writeFolder(resolve(values.out), files);
  log(`adapter written to ${resolve(values.out)}`);
  process.stdout.write(
    `${JSON.stringify({
      eval_loss_before: evalBefore,
      eval_loss_after: evalAfter,
      train_loss_first: result.trainLossFirst,
      train_loss_last: result.trainLossLast,
      steps: result.steps,
      tokens_per_s: result.tokensPerSecond,
      elapsed_s: result.elapsedMs / 1000,
      out: resolve(values.out),
    })}\n`,
  );
  return 0;
}

async function readDataset(path: string, log: (line: string) => void) {
  const report: ImportReport = parseJsonlBytes(new Uint8Array(await readFile(resolve(path))), { fileName: basename(path) });
  for (const error of report.errors.slice(0, 20)) log(`${path}:${error.line}: ${error.reason}`);
  if (report.errors.length > 20) log(`... and ${report.errors.length - 20} more invalid lines`);
  if (report.rows.length === 0) throw new UsageError(`${path}: no valid rows (${report.errors.length} invalid lines)`);
  if (report.errors.length) log(`${path}: using ${report.rows.length} valid rows, skipping ${report.errors.length} invalid lines`);
  return report.rows;
}

function positiveInt(text: string, flag: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${text}"`);
  return value;
}

function nonNegative(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`${flag} must be a number >= 0, got "${text}"`);
  return value;
}

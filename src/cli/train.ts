import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { AdapterTensors } from '../export/adapter';
import { writeFolder } from '../export/node-folder';
import { peftAdapterFiles } from '../export/peft';
import type { LoraConfig } from '../lora/config';
import type { OpenedModel } from '../model/weights';
import { padTokenId, prepareRunData, prepTokenizerFor } from '../train/pipeline';
import { type PhaseOutcome, runProgressive, startingAdapter } from '../train/progressive';
import { type TrainSettings, validateTrainSettings } from '../train/settings';
import { trainAdapter } from '../train/run';
import { LoraTrainer, type TrainProgress } from '../train/trainer';
import { gibibytes, loadOnGpu, readAdapterFolder, readDataset, recomputeMode, WEIGHTS_OPTION, weightPrecision } from './common';
import { MODEL_OPTIONS, openCliModel } from './model-arg';
import { UsageError } from './usage';

const OPTIONS = {
  ...MODEL_OPTIONS,
  data: { type: 'string' },
  eval: { type: 'string' },
  out: { type: 'string' },
  'init-adapter': { type: 'string' },
  'phase1-data': { type: 'string' },
  'phase1-eval': { type: 'string' },
  'phase1-epochs': { type: 'string' },
  'phase1-lr': { type: 'string' },
  'phase1-out': { type: 'string' },
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
  recompute: { type: 'string' },
  'memory-budget': { type: 'string' },
  quiet: { type: 'boolean', default: false },
  ...WEIGHTS_OPTION,
} as const;

type Values = ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS }>>['values'];

/**
 * `train`: one run (optionally continuing --init-adapter), or with --phase1-data a progressive
 * run whose phase 2 (--data) continues the phase-1 adapter.
 */
export async function trainCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS });
  if (!values.data) throw new UsageError('train needs --data <train.jsonl>');
  if (!values.out) throw new UsageError('train needs --out <adapter-dir>');
  const progressive = values['phase1-data'] !== undefined;
  for (const flag of ['phase1-eval', 'phase1-epochs', 'phase1-lr', 'phase1-out'] as const) {
    if (!progressive && values[flag] !== undefined) throw new UsageError(`--${flag} belongs to a progressive run: give --phase1-data too`);
  }
  const log = (line: string) => {
    if (!values.quiet) process.stderr.write(`${line}\n`);
  };
  const precision = weightPrecision(values.weights);
  const base = await openCliModel(values);
  const { opened } = base;
  const init = values['init-adapter'] ? await readAdapterFolder(values['init-adapter'], opened) : null;
  const settings = trainSettings(values, init?.config ?? null);
  if (init)
    log(`continuing ${resolve(values['init-adapter']!)} (r=${init.config.r}, alpha ${init.config.alpha} -> ${settings.lora.alpha})`);
  const baseModel = String(opened.tokenizerConfig.name_or_path ?? base.label);
  const writeAdapter = async (dir: string, adapter: AdapterTensors) => {
    await writeFolder(resolve(dir), peftAdapterFiles(adapter, { baseModel }));
    log(`adapter written to ${resolve(dir)}`);
  };
  const progressLine = (prefix: string) => (p: TrainProgress) =>
    log(
      `${prefix}step ${p.step}/${p.totalSteps} epoch ${p.epoch.toFixed(2)} loss ${p.loss.toFixed(4)}` +
        (p.evalLoss !== undefined ? ` eval ${p.evalLoss.toFixed(4)}` : '') +
        ` lr ${p.lr.toExponential(2)} ${Math.round(p.tokensPerSecond)} tok/s`,
    );
  if (progressive) return trainProgressive(values, opened, settings, init, log, writeAdapter, progressLine);

  const rows = await readDataset(values.data, log);
  const evalRows = values.eval ? await readDataset(values.eval, log) : null;
  const tok = prepTokenizerFor(opened);
  const data = prepareRunData(rows, evalRows, tok, settings);
  log(
    `${data.train.length} training and ${data.eval.length} eval examples; ${data.truncatedCount} truncated to ${settings.maxLength} tokens`,
  );
  const { gpu, model } = await loadOnGpu(opened, precision, log);
  const adapter = startingAdapter(gpu, opened.config, settings.lora, settings.seed, init, values['init-adapter']);
  log(
    `LoRA r=${settings.lora.r} alpha=${settings.lora.alpha} on ${settings.lora.targets.join(', ')}: ` +
      `${adapter.parameterCount} trainable parameters`,
  );
  const trainer = new LoraTrainer(gpu, model, adapter, settings, data, padTokenId(tok));
  log(recomputeLine(trainer.recompute, settings));
  const { result, evalLossBefore, evalLossAfter } = await trainAdapter(trainer, {
    hooks: { onProgress: progressLine('') },
    save: (tensors) => writeAdapter(values.out!, { config: settings.lora, tensors }),
  });
  process.stdout.write(
    `${JSON.stringify({
      eval_loss_before: evalLossBefore,
      eval_loss_after: evalLossAfter,
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

async function trainProgressive(
  values: Values,
  opened: OpenedModel,
  settings: TrainSettings,
  init: AdapterTensors | null,
  log: (line: string) => void,
  writeAdapter: (dir: string, adapter: AdapterTensors) => Promise<void>,
  progressLine: (prefix: string) => (p: TrainProgress) => void,
): Promise<number> {
  const num = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  const phase1Settings = validateTrainSettings({
    ...settings,
    epochs: num(values['phase1-epochs']) ?? settings.epochs,
    lr: num(values['phase1-lr']) ?? settings.lr,
  });
  const phase1 = {
    rows: await readDataset(values['phase1-data']!, log),
    evalRows: values['phase1-eval'] ? await readDataset(values['phase1-eval'], log) : null,
    settings: phase1Settings,
  };
  const phase2 = {
    rows: await readDataset(values.data!, log),
    evalRows: values.eval ? await readDataset(values.eval, log) : null,
    settings,
  };
  const { gpu, model } = await loadOnGpu(opened, weightPrecision(values.weights), log);
  const result = await runProgressive(gpu, model, prepTokenizerFor(opened), {
    phase1,
    phase2,
    initAdapter: init,
    hooks: {
      onPhase: (phase, stage) => log(`phase ${phase}: ${stage}`),
      onProgress: (phase, p) => progressLine(`phase ${phase} `)(p),
    },
  });
  if (values['phase1-out'] && result.phase1Adapter) await writeAdapter(values['phase1-out'], result.phase1Adapter);
  await writeAdapter(values.out!, { config: settings.lora, tensors: await result.adapter.readTensors() });
  const phase = (o: PhaseOutcome) => ({
    train_examples: o.trainExamples,
    eval_examples: o.evalExamples,
    eval_loss_before: o.evalLossBefore,
    eval_loss_after: o.evalLossAfter,
    train_loss_first: o.trainLossFirst,
    train_loss_last: o.trainLossLast,
    steps: o.steps,
    tokens_per_s: o.tokensPerSecond,
    elapsed_s: o.elapsedMs / 1000,
  });
  const f = result.forgetting!;
  process.stdout.write(
    `${JSON.stringify({
      mode: 'progressive',
      phase1: phase(result.phase1),
      phase2: phase(result.phase2!),
      forgetting: {
        phase1_eval_loss_after_phase1: f.phase1EvalLossAfterPhase1,
        phase1_eval_loss_after_phase2: f.phase1EvalLossAfterPhase2,
        forgetting: f.forgetting,
      },
      out: resolve(values.out!),
      phase1_out: values['phase1-out'] ? resolve(values['phase1-out']) : null,
    })}\n`,
  );
  return 0;
}

function recomputeLine(on: boolean, settings: TrainSettings): string {
  const why = settings.recompute === 'auto' ? ` (--recompute auto: ${on ? 'over' : 'within'} the memory budget without it)` : '';
  return `activation recomputation ${on ? 'on' : 'off'}${why}`;
}

/** The LoRA shape flags default to the init adapter's, so continuing a run needs none of them. */
function trainSettings(values: Values, init: LoraConfig | null): TrainSettings {
  const num = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  return validateTrainSettings({
    lora: {
      r: num(values.r) ?? init?.r,
      alpha: num(values.alpha) ?? init?.alpha,
      dropout: num(values.dropout),
      targets: (values.targets?.split(',').map((t) => t.trim()) ?? init?.targets) as never,
      useRslora: init?.useRslora,
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
    recompute: values.recompute === undefined ? undefined : recomputeMode(values.recompute),
    memoryBudget: values['memory-budget'] === undefined ? undefined : gibibytes(values['memory-budget'], '--memory-budget'),
  });
}

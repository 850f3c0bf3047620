/**
 * Soak benchmark: one long training run of the real stories260K on real data, through the same
 * trainer as the CLI and the page, with evaluation and checkpoints along the way, watching for
 * what only shows over thousands of steps: GPU buffers or JS heap that grow, caches that never
 * stop filling, steps that get slower. Prints one JSON object (the last stdout line), also
 * written to bench/results/<device>-soak-<steps>-<date>.json. Not a test: it reports figures
 * and whether they stayed within the bounds below, and exits with 1 when one did not.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInt, readDataset } from '../cli/common';
import { UsageError } from '../cli/usage';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import { LoraAdapter } from '../lora/adapter';
import { LlamaModel } from '../model/llama';
import { nodeFileSource } from '../model/node-file-source';
import { openModel } from '../model/weights';
import { padTokenId, prepareRunData, prepTokenizerFor } from '../train/pipeline';
import { validateTrainSettings } from '../train/settings';
import { LoraTrainer } from '../train/trainer';
import { deviceSlug } from './bench';

const USAGE = `npm run -s soak -- [options]

Trains stories260K for --steps optimizer steps (default 5000) at batch 1, 32 tokens per row, LoRA
r=8 on q,k,v,o (other settings: the trainer's defaults), evaluating and checkpointing every --every steps, and reports GPU buffer bytes and
JS heap at start, middle and end and the step-time drift (first vs last window of steps).

  --steps 5000  --every 500  --seq 32  --batch 1  --seed 0
  --model ../shared/models/stories260K
  --data ../shared/data/zog_stories_train.jsonl  --eval ../shared/data/zog_stories_eval.jsonl
  --out <file.json>
Run with node --expose-gc (the npm script does) so heap figures are taken after a full collection.
`;

/**
 * Growth allowed from the start sample (after WARMUP_STEPS, when pipelines, bind groups and
 * readback buffers exist) to the end. GPU buffers are allocated once per run, so any growth is a
 * leak. The heap may move by what V8 and Dawn keep in caches; 16 MiB is far below what a leak
 * of one step's data (a batch, a readback) over thousands of steps would add.
 */
const BOUNDS = { gpu_live_bytes_growth: 0, gpu_live_buffers_growth: 0, heap_used_growth_bytes: 16 * 2 ** 20 };

const WARMUP_STEPS = 10;
/** Steps compared for drift: the first and last this many (fewer in a short run). */
const DRIFT_WINDOW = 500;

interface Sample {
  step: number;
  gpu_live_bytes: number;
  gpu_live_buffers: number;
  bind_groups_cached: number;
  heap_used_bytes: number;
  heap_total_bytes: number;
  rss_bytes: number;
  external_bytes: number;
  array_buffers_bytes: number;
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '5000' },
      every: { type: 'string', default: '500' },
      seq: { type: 'string', default: '32' },
      batch: { type: 'string', default: '1' },
      seed: { type: 'string', default: '0' },
      model: { type: 'string', default: '../shared/models/stories260K' },
      data: { type: 'string', default: '../shared/data/zog_stories_train.jsonl' },
      eval: { type: 'string', default: '../shared/data/zog_stories_eval.jsonl' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const steps = positiveInt(values.steps, '--steps', 2 * WARMUP_STEPS);
  const every = positiveInt(values.every, '--every');
  const log = (line: string) => process.stderr.write(`soak: ${line}\n`);

  const opened = await openModel(nodeFileSource(resolve(values.model)));
  const rows = await readDataset(values.data, log);
  const evalRows = await readDataset(values.eval, log);
  const tok = prepTokenizerFor(opened);
  const probe = validateTrainSettings({
    batchSize: positiveInt(values.batch, '--batch'),
    maxLength: positiveInt(values.seq, '--seq', 2),
    seed: positiveInt(values.seed, '--seed', 0),
  });
  const data = prepareRunData(rows, evalRows, tok, probe);
  if (data.train.length === 0) throw new UsageError(`${values.data}: no training examples after preparation`);
  // Enough epochs to reach `steps`; the run is stopped at exactly `steps`.
  const epochs = Math.ceil(steps / Math.ceil(data.train.length / probe.batchSize));
  const settings = validateTrainSettings({
    lora: { r: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
    epochs,
    batchSize: probe.batchSize,
    maxLength: probe.maxLength,
    evalEvery: every,
    checkpointEvery: every,
    seed: probe.seed,
  });

  const gpu = new Gpu(await createNodeDevice());
  const model = await LlamaModel.load(gpu, opened.weights);
  const adapter = new LoraAdapter(gpu, opened.config, settings.lora);
  adapter.initPeft(settings.seed);
  const trainer = new LoraTrainer(gpu, model, adapter, settings, data, padTokenId(tok));
  // One evaluation and one checkpoint readback first, so every pool and cache a run fills exists
  // before the start sample: growth after it is what the run keeps adding.
  await trainer.evalLoss();
  await trainer.checkpoint({ epoch: 0, batchIndex: 0 }, 0, null);

  const sample = (step: number): Sample => {
    (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    const { liveBytes, liveBuffers } = gpu.bufferAccounting;
    return {
      step,
      gpu_live_bytes: liveBytes,
      gpu_live_buffers: liveBuffers,
      bind_groups_cached: gpu.bindGroupStats.cached,
      heap_used_bytes: mem.heapUsed,
      heap_total_bytes: mem.heapTotal,
      rss_bytes: mem.rss,
      external_bytes: mem.external,
      array_buffers_bytes: mem.arrayBuffers,
    };
  };
  const sampleAt = new Set([WARMUP_STEPS, Math.round(steps / 2), steps]);
  for (let i = 1; i < 10; i++) sampleAt.add(Math.round((steps * i) / 10));
  const samples: Sample[] = [sample(0)];
  const stepMs: number[] = [];
  const losses: { step: number; loss: number; eval_loss?: number }[] = [];
  let checkpoints = 0;
  let last = performance.now();

  log(`${steps} steps at batch ${settings.batchSize}, ${settings.maxLength} tokens per row, eval and checkpoint every ${every}`);
  const result = await trainer.run({
    onProgress: (p) => {
      const now = performance.now();
      stepMs.push(now - last);
      if (p.step === 1 || p.step % every === 0 || p.evalLoss !== undefined) {
        losses.push({ step: p.step, loss: p.loss, ...(p.evalLoss !== undefined && { eval_loss: p.evalLoss }) });
        log(`step ${p.step}/${steps} loss ${p.loss.toFixed(4)}${p.evalLoss !== undefined ? ` eval ${p.evalLoss.toFixed(4)}` : ''}`);
      }
      if (sampleAt.has(p.step)) samples.push(sample(p.step));
      // Sampling (a full GC) is not the step's time.
      last = performance.now();
    },
    // The checkpoint arrives as host arrays, as the page stores them; dropping it keeps only the readback.
    onCheckpoint: async () => {
      checkpoints++;
    },
    // Polled before each step is recorded; the optimizer counts recorded steps (reports lag by one).
    control: () => (trainer.optimizer.step >= steps ? 'stop' : 'continue'),
  });
  if (stepMs.length !== steps) throw new Error(`the trainer ran ${stepMs.length} steps, expected ${steps}`);

  const at = (step: number) => samples.find((s) => s.step === step)!;
  const start = at(WARMUP_STEPS);
  const middle = at(Math.round(steps / 2));
  const end = at(steps);
  const window = Math.min(DRIFT_WINDOW, Math.floor(steps / 4));
  const first = windowStats(stepMs.slice(0, window));
  const lastWindow = windowStats(stepMs.slice(-window));
  const growth = {
    gpu_live_bytes: end.gpu_live_bytes - start.gpu_live_bytes,
    gpu_live_buffers: end.gpu_live_buffers - start.gpu_live_buffers,
    heap_used_bytes: end.heap_used_bytes - start.heap_used_bytes,
    rss_bytes: end.rss_bytes - start.rss_bytes,
  };
  const withinBounds =
    growth.gpu_live_bytes <= BOUNDS.gpu_live_bytes_growth &&
    growth.gpu_live_buffers <= BOUNDS.gpu_live_buffers_growth &&
    growth.heap_used_bytes <= BOUNDS.heap_used_growth_bytes;
  const info = gpu.device.adapterInfo;
  const device = {
    name: [info.vendor, info.architecture].filter(Boolean).join(' ') + (info.description ? ` (${info.description})` : ''),
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    cpu_adapter: gpu.isCpuAdapter,
  };
  const report = {
    benchmark: 'webtune-soak',
    model: values.model,
    data: { train: values.data, eval: values.eval, train_examples: data.train.length, eval_examples: data.eval.length },
    steps,
    status: result.status,
    batch: settings.batchSize,
    seq: settings.maxLength,
    lora: settings.lora,
    lr: settings.lr,
    eval_and_checkpoint_every: every,
    checkpoints,
    gc_exposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
    memory: { start, middle, end, growth_start_to_end: growth, samples },
    bounds: BOUNDS,
    within_bounds: withinBounds,
    step_ms: {
      window,
      first,
      last: lastWindow,
      drift_median: lastWindow.median / first.median,
      drift_mean: lastWindow.mean / first.mean,
      mean_per_tenth: tenths(stepMs),
    },
    loss: { first: losses[0]?.loss ?? null, last: result.trainLossLast, eval_last: result.evalLoss, reports: losses },
    elapsed_s: result.elapsedMs / 1000,
    device,
    git_commit: gitCommit(),
    command: ['npm', 'run', '-s', 'soak', '--', ...argv].join(' '),
    date: new Date().toISOString().slice(0, 10),
  };
  const out = resolve(values.out ?? `bench/results/${deviceSlug(device)}-soak-${steps}-${report.date}.json`);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  log(`written to ${out}`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return withinBounds ? 0 : 1;
}

function windowStats(ms: number[]): { steps: number; mean: number; median: number; min: number; max: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return {
    steps: ms.length,
    mean: ms.reduce((a, b) => a + b, 0) / ms.length,
    median: sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/** Mean step time of each tenth of the run, in order: a slow drift shows as a rising row. */
function tenths(ms: number[]): number[] {
  return Array.from({ length: 10 }, (_, i) => {
    const part = ms.slice(Math.floor((ms.length * i) / 10), Math.floor((ms.length * (i + 1)) / 10));
    return part.reduce((a, b) => a + b, 0) / Math.max(1, part.length);
  });
}

function gitCommit(): string | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === '' ? commit : `${commit}-dirty`;
  } catch {
    return null;
  }
}

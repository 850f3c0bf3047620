import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gibibytes, recomputeMode, weightPrecision } from '../cli/common';
import { UsageError } from '../cli/usage';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import { validateLoraConfig } from '../lora/config';
import { parseModelConfig } from '../model/config';
import { type BenchOptions, deviceSlug, runBenchmark } from './bench';
import { runScheduleCheck } from './check';
import { BUILT_IN_CONFIGS } from './configs';
import { MATMUL_SCHEDULES } from './matmul-timing';

const USAGE = `npm run -s bench -- [options]

Trains a LoRA adapter on a random-init model (random token ids, nothing downloaded) and prints one
JSON object (the last stdout line), also written to
bench/results/<device>-<config>[-recompute][-memory-only]-<date>.json.

  --config <name>|<config.json>                     model shapes (default stories260K); names: the files in bench/configs
  --seq 256 --batch 4                                tokens per row, rows per step
  --r 8 --alpha 2r --targets q_proj,k_proj,v_proj    LoRA settings (dropout 0)
  --warmup 1 --steps 3                               untimed, then timed optimizer steps
  --memory-only                                      build everything and record steps without running them: peak memory only
  --recompute off|on|auto                            activation recomputation (default off; auto: on over the memory budget)
  --memory-budget <GiB>                              the budget for --recompute auto (default: the device's, see src/app/memory.ts)
  --schedules auto|gpu|cpu                           kernel schedules: by device (default), or forced to one kind
  --family-timing timestamp-query|alone              how kernel families are timed (default: timestamps where offered)
  --matmul-schedules vec4,subgroup                   also time each matmul shape alone on each of these schedules, forced
                                                     (vec4, subgroup, tiled, direct; ms_per_call_by_schedule in the JSON)
  --weights auto|f32|bf16|f16                        how the weight matrices are stored on the GPU (the random weights are
                                                     F32, so auto is f32; bf16/f16 store them as a 16-bit checkpoint would be)
  --gguf-mix Q4_K_M|Q5_K_M                           random weights in llama-quantize's types for that mix (random blocks;
                                                     with --weights auto they stay quantized on the GPU)
  --seed 0                                           random weights, tokens and adapter init
  --out <file.json>                                  where to write the JSON instead

  --check   instead of training, run every GPU kernel schedule and its CPU-schedule twin at one
            layer's shapes of --config, --seq and --batch (random inputs) and print their worst
            relative difference as JSON (to bench/results/<device>-<config>-check-<date>.json);
            exit status 1 when any exceeds the bar. Run it first on a new GPU.
`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', default: 'stories260K' },
      seq: { type: 'string', default: '256' },
      batch: { type: 'string', default: '4' },
      r: { type: 'string', default: '8' },
      alpha: { type: 'string' },
      targets: { type: 'string', default: 'q_proj,k_proj,v_proj' },
      warmup: { type: 'string', default: '1' },
      steps: { type: 'string', default: '3' },
      'memory-only': { type: 'boolean', default: false },
      recompute: { type: 'string', default: 'off' },
      'memory-budget': { type: 'string' },
      check: { type: 'boolean', default: false },
      schedules: { type: 'string', default: 'auto' },
      'family-timing': { type: 'string' },
      'matmul-schedules': { type: 'string' },
      weights: { type: 'string', default: 'auto' },
      'gguf-mix': { type: 'string' },
      seed: { type: 'string', default: '0' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { name, config } = await loadConfig(values.config);
  const r = integer(values.r, '--r', 1);
  const schedules = oneOf(values.schedules, '--schedules', ['auto', 'gpu', 'cpu'] as const);
  const familyTiming =
    values['family-timing'] === undefined
      ? undefined
      : oneOf(values['family-timing'], '--family-timing', ['timestamp-query', 'alone'] as const);
  const command = ['npm', 'run', '-s', 'bench', '--', ...argv].map(shellQuote).join(' ');
  const gpu = new Gpu(await createNodeDevice());
  gpu.schedules = schedules;
  if (values.check) {
    const seq = integer(values.seq, '--seq', 1);
    const check = {
      ...(await runScheduleCheck(gpu, {
        configName: name,
        config,
        seq,
        batch: integer(values.batch, '--batch', 1),
        r,
        seed: integer(values.seed, '--seed', 0),
      })),
      git_commit: gitCommit(),
      command,
    };
    await writeResult(values.out ?? `bench/results/${deviceSlug(check.device)}-${name}-check-${check.date}.json`, check);
    return check.ok ? 0 : 1;
  }
  if (familyTiming === 'timestamp-query' && !gpu.hasTimestamps)
    throw new UsageError('--family-timing timestamp-query: this device lacks timestamp-query');
  const options: BenchOptions = {
    configName: name,
    config,
    seq: integer(values.seq, '--seq', 2),
    batch: integer(values.batch, '--batch', 1),
    lora: validateLoraConfig({
      r,
      alpha: values.alpha === undefined ? 2 * r : Number(values.alpha),
      dropout: 0,
      targets: values.targets.split(',').map((t) => t.trim()),
    }),
    warmup: integer(values.warmup, '--warmup', 0),
    steps: integer(values.steps, '--steps', 1),
    memoryOnly: values['memory-only'],
    weights: weightPrecision(values.weights),
    ggufMix: values['gguf-mix'] === undefined ? null : oneOf(values['gguf-mix'], '--gguf-mix', ['Q4_K_M', 'Q5_K_M'] as const),
    seed: integer(values.seed, '--seed', 0),
    matmulMinMs: 500,
    recompute: recomputeMode(values.recompute),
    memoryBudget: values['memory-budget'] === undefined ? null : gibibytes(values['memory-budget'], '--memory-budget'),
    familyTiming,
    matmulSchedules: (values['matmul-schedules'] ?? '')
      .split(',')
      .filter((name) => name.trim() !== '')
      .map((name) => oneOf(name.trim(), '--matmul-schedules', MATMUL_SCHEDULES)),
  };

  const result = { ...(await runBenchmark(gpu, options)), git_commit: gitCommit(), command };
  const weights = (options.ggufMix ? `-${options.ggufMix.toLowerCase()}` : '') + (options.weights === 'auto' ? '' : `-${options.weights}`);
  const mode = weights + (result.recompute.on ? '-recompute' : '') + (options.memoryOnly ? '-memory-only' : '');
  await writeResult(values.out ?? `bench/results/${deviceSlug(result.device)}-${name}${mode}-${result.date}.json`, result);
  return 0;
}

/** Writes the JSON file (pretty) and prints it as the last stdout line. */
async function writeResult(file: string, result: object): Promise<void> {
  const out = resolve(file);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
  process.stderr.write(`bench: written to ${out}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function oneOf<T extends string>(text: string, flag: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) throw new UsageError(`${flag} must be ${choices.join(', ')}, got "${text}"`);
  return text as T;
}

async function loadConfig(nameOrPath: string) {
  const builtIn = BUILT_IN_CONFIGS[nameOrPath];
  if (builtIn) return { name: nameOrPath, config: parseModelConfig(builtIn, `${nameOrPath} (built in)`) };
  if (!nameOrPath.endsWith('.json')) {
    throw new UsageError(`--config "${nameOrPath}" is neither ${Object.keys(BUILT_IN_CONFIGS).join(', ')} nor a config.json path`);
  }
  const json: unknown = JSON.parse(await readFile(resolve(nameOrPath), 'utf8'));
  const folder = basename(dirname(resolve(nameOrPath)));
  return {
    name: basename(nameOrPath) === 'config.json' ? folder : basename(nameOrPath, '.json'),
    config: parseModelConfig(json, nameOrPath),
  };
}

/** The commit the benchmark ran at, with `-dirty` when tracked files differ from it. */
function gitCommit(): string | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return dirty ? `${commit}-dirty` : commit;
  } catch {
    return null;
  }
}

function integer(text: string, flag: string, min: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${text}"`);
  return value;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

#!/usr/bin/env node
// node scripts/bench-step.mjs <other-checkout> [--seq 198 --batch 4 --r 8 --warmup 1 --steps 2 ...]
//
// Times the same training steps (src/bench/step-time.ts) with this checkout's engine and with the
// engine of another checkout of webtune (say `git worktree add /tmp/wt-first b7c4ce0`), one after
// the other on this machine, and prints JSON with both and the speedup. The entry is bundled twice:
// once as it is, once with its imports redirected to the other checkout's src/, so both runs share
// the entry, the Dawn build and the machine, and differ only in the engine.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './bundle.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = 'src/bench/step-time.ts';
const [other, ...args] = process.argv.slice(2);
if (!other || !existsSync(resolve(other, 'src/model/llama.ts'))) {
  console.error('usage: node scripts/bench-step.mjs <other webtune checkout> [step-time options]');
  process.exit(2);
}

/** Resolves the entry's relative imports inside `engineRoot`/src/bench instead of ours. */
const engineFrom = (engineRoot) => ({
  name: 'engine-from',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (a) => {
      if (a.importer !== resolve(root, ENTRY)) return undefined;
      const base = resolve(engineRoot, 'src/bench', a.path);
      const file = [`${base}.ts`, resolve(base, 'index.ts')].find(existsSync);
      return file ? { path: file } : { errors: [{ text: `${engineRoot} has no ${a.path} for ${ENTRY}` }] };
    });
  },
});

function timeSteps(engineRoot, name) {
  const file = engineRoot === root ? bundle(ENTRY, name) : bundle(ENTRY, name, { plugins: [engineFrom(engineRoot)] });
  return file.then((path) => {
    const runner =
      'const { main } = await import(process.argv[1]); process.exitCode = await main(process.argv.slice(2)); ' +
      "process.stdout.write('', () => process.exit(process.exitCode));";
    const run = spawnSync('node', ['--input-type=module', '-e', runner, path, ...args], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (run.status !== 0) throw new Error(`step timing with the engine of ${engineRoot} exited ${run.status}`);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1));
    const commit = execFileSync('git', ['-C', engineRoot, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const sorted = [...result.step_ms].sort((x, y) => x - y);
    const median = sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    return { commit, ...result, median_ms: median };
  });
}

const otherResult = await timeSteps(resolve(other), 'step-time-other');
const thisResult = await timeSteps(root, 'step-time-this');
console.log(
  JSON.stringify({
    benchmark: 'webtune-step-time',
    date: new Date().toISOString().slice(0, 10),
    command: ['node', 'scripts/bench-step.mjs', other, ...args].join(' '),
    other: otherResult,
    this: thisResult,
    speedup: otherResult.median_ms / thisResult.median_ms,
  }),
);

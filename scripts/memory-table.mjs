#!/usr/bin/env node
// The memory acceptance table: runs `npm run -s bench -- --memory-only` for each row and prints the
// measured peak, the page's estimate and their difference as Markdown, one row per run.
//
//   node scripts/memory-table.mjs                 # the acceptance rows (issue 11)
//   node scripts/memory-table.mjs --all           # and every config in bench/configs at seq 512, batch 1, recompute off and on
//   node scripts/memory-table.mjs -- --weights bf16   # arguments after -- go to every bench run
//
// A config whose file is not in bench/configs is listed as missing, not run.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const args = process.argv.slice(2);
const split = args.indexOf('--');
const extra = split >= 0 ? args.slice(split + 1) : [];
const all = (split >= 0 ? args.slice(0, split) : args).includes('--all');

/** [config, seq, batch, recompute, bar in GiB or null]; r 16 on q/k/v throughout. */
const ROWS = [
  ['smollm2-135m', 512, 4, 'off', 1.8],
  ['smollm2-135m', 512, 4, 'on', 0.6],
  ['qwen2.5-1.5b', 512, 1, 'on', 4],
  ['llama3.2-1b', 1024, 1, 'on', 3.5],
];
if (all) {
  for (const file of readdirSync('bench/configs')
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    for (const recompute of ['off', 'on']) ROWS.push([file.slice(0, -'.json'.length), 512, 1, recompute, null]);
  }
}

const gib = (bytes) => (bytes / 2 ** 30).toFixed(3);
const HEADER = ['config', 'seq × batch', 'recompute', 'peak GiB', 'estimate GiB', 'estimate error'];
HEADER.push('weights / adapter+opt / activations / other MiB', 'bar', 'command');
const row = (cells) => console.log(`| ${cells.join(' | ')} |`);
row(HEADER);
row(HEADER.map(() => '---'));
for (const [config, seq, batch, recompute, bar] of ROWS) {
  const file = `bench/configs/${config}.json`;
  const shape = ['--seq', String(seq), '--batch', String(batch), '--r', '16', '--targets', 'q_proj,k_proj,v_proj'];
  const benchArgs = ['--config', file, ...shape, '--memory-only', '--recompute', recompute, ...extra];
  const command = `npm run -s bench -- ${benchArgs.join(' ')}`;
  if (!existsSync(file)) {
    row([config, `${seq} × ${batch}`, recompute, `missing: no ${file}`, '', '', '', '', '']);
    continue;
  }
  const out = ['--out', `/tmp/memory-table-${config}-${recompute}.json`];
  const stdout = execFileSync('npm', ['run', '-s', 'bench', '--', ...benchArgs, ...out], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const r = JSON.parse(stdout.trim().split('\n').at(-1));
  const m = r.memory;
  const parts = [m.weights_bytes, m.adapter_and_optimizer_bytes, m.activation_bytes, m.other_bytes];
  const split = parts.map((b) => (b / 2 ** 20).toFixed(1));
  const verdict = bar === null ? '' : `${r.peak_memory_gib <= bar ? '≤' : '>'} ${bar} GiB`;
  const error = `${(100 * m.estimate_error).toFixed(4)}%`;
  row([
    config,
    `${seq} × ${batch}`,
    r.recompute.on ? 'on' : 'off',
    gib(r.peak_memory_bytes),
    gib(m.estimate_bytes),
    error,
    split.join(' / '),
    verdict,
    `\`${command}\``,
  ]);
}

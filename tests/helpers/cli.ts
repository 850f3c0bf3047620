import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './paths';

/** Runs the real CLI (`npm run -s webtune -- ...`) as a child process; `last` is its last stdout line. */
export function webtune(args: string[], timeoutMs = 600_000) {
  const run = spawnSync('node', ['scripts/webtune.mjs', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: timeoutMs });
  const lines = run.stdout.trim().split('\n');
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, last: lines[lines.length - 1] };
}

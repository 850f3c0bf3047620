// `npm test`: makes sure the system packages the GPU tests need are installed, checks formatting,
// lint rules, line width and types, then runs the unit tests (vitest, WebGPU through Dawn) and the
// browser tests (playwright, Debian's chromium).
// Without a GPU both run on SwiftShader, the CPU Vulkan that ships with chromium.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CHROMIUM = '/usr/bin/chromium';
const PACKAGES = ['chromium', 'libvulkan1'];

/** Runs a command with inherited stdio and returns its exit code. */
function run(command, args, env = process.env) {
  console.log(`\n> ${[command, ...args].join(' ')}`);
  const result = spawnSync(command, args, { stdio: 'inherit', env });
  if (result.error) {
    console.error(`Could not run ${command}: ${result.error.message}`);
    return 1;
  }
  return result.status ?? 1;
}

function hasVulkanLoader() {
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig']) {
    const result = spawnSync(ldconfig, ['-p'], { encoding: 'utf8' });
    if (!result.error) return result.stdout.includes('libvulkan.so.1');
  }
  return false;
}

function missingPackages() {
  const missing = [];
  if (!existsSync(CHROMIUM)) missing.push('chromium');
  if (!hasVulkanLoader()) missing.push('libvulkan1');
  return missing;
}

/** Installs chromium and the Vulkan loader with apt-get where missing; returns an exit code. */
function ensureSystemPackages() {
  const missing = missingPackages();
  if (missing.length === 0) return 0;
  const installHint = `Install them with: apt-get update && apt-get install -y ${PACKAGES.join(' ')}`;
  console.log(`Missing system packages: ${missing.join(', ')}.`);
  if (process.getuid?.() !== 0) {
    console.error(`Not running as root, so they cannot be installed here. ${installHint}`);
    return 1;
  }
  console.log(`Installing ${PACKAGES.join(' ')} with apt-get...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (run('apt-get', ['update'], env) !== 0) console.warn('apt-get update failed; trying the install anyway.');
  const code = run('apt-get', ['install', '-y', ...PACKAGES], env);
  const stillMissing = missingPackages();
  if (stillMissing.length > 0) {
    console.error(`apt-get did not install ${stillMissing.join(', ')}. ${installHint}`);
    return code || 1;
  }
  return 0;
}

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const steps = [
  ensureSystemPackages,
  // Formatting, lint rules and line width first: they take seconds, the GPU tests minutes.
  () => run('npx', ['biome', 'ci', '.']),
  () => run('node', ['scripts/check-lines.mjs']),
  () => run('npx', ['tsc', '--noEmit']),
  () => run('npx', ['vitest', 'run']),
  () => run('npx', ['playwright', 'test']),
];
for (const step of steps) {
  const code = step();
  if (code !== 0) process.exit(code);
}

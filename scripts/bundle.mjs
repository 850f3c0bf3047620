// Runs a TypeScript entry of ours from Node. The engine imports its WGSL shaders as text (`?raw`,
// as in the Vite app), so the entry is bundled with esbuild first; only our own code is bundled.
import { build } from 'esbuild';
import { readFile, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({
      path: resolve(args.resolveDir, args.path.slice(0, -'?raw'.length)),
      namespace: 'raw-text',
    }));
    b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (args) => ({
      contents: await readFile(args.path, 'utf8'),
      loader: 'text',
    }));
  },
};

/**
 * Bundles `entry` (relative to the repository root) to node_modules/.cache/webtune/<name>.mjs.
 * npm packages stay imports unless `external` lists the only ones that may (a bundle for a
 * machine without node_modules); `plugins` run before the one that loads `?raw` shaders.
 */
export async function bundle(entry, name, { plugins = [], external } = {}) {
  const outfile = resolve(root, `node_modules/.cache/webtune/${name}.mjs`);
  // Several CLI processes may bundle at once (parallel tests): each writes its own file and renames
  // it into place, so no process ever imports a half-written bundle.
  const written = `${outfile}.${process.pid}.tmp.mjs`;
  await build({
    entryPoints: [resolve(root, entry)],
    outfile: written,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    ...(external ? { external } : { packages: 'external' }),
    plugins: [...plugins, rawText],
    logLevel: 'warning',
  });
  await rename(written, outfile);
  return outfile;
}

/**
 * Bundles `entry`, runs its exported `main(argv)` with this process's arguments and exits with the
 * status it returns (2 for an error, printed as `<program>: <name>: <message>`).
 */
export async function runMain(entry, name) {
  const { main } = await import(pathToFileURL(await bundle(entry, name)).href);
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${name}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`);
    process.exitCode = 2;
  }
  // Dawn keeps the event loop alive; leave once the output is flushed.
  process.stdout.write('', () => process.exit(process.exitCode ?? 0));
}

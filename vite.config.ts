/**
 * WGSL sources are imported as strings with `?raw`, which Vite supports out of the box. The base is
 * relative, so the built site (the worker, its chunks, the demo files) works from any host and
 * under any sub-path.
 *
 * The service worker plugin (build only) writes dist/sw.js, the worker of src/site/service-worker.ts
 * with its precache list: every file of the build (bundle and public folder) by its path relative
 * to the site's root, and a version hashed from their contents. Relative paths again, so the same
 * build works under `/` and under any sub-path.
 *
 * The policy plugin (build only) puts the site's Content-Security-Policy (src/site/csp.ts) first in
 * index.html's head; `WEBTUNE_CONNECT_SRC` adds hosts the page may connect to.
 *
 * `--mode e2e` builds the site the end-to-end tests run against into dist-e2e/: the same build
 * with the fault hooks of src/testing/hooks.ts compiled in (__WEBTUNE_TEST_HOOKS__). Every other
 * mode defines it as false, so the production build (dist/) has none of them.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { transform } from 'esbuild';
import { defineConfig, type Plugin, type ResolvedConfig } from 'vite';
import { connectSources, contentSecurityPolicy } from './src/site/csp';

const SOURCE = new URL('./src/site/service-worker.ts', import.meta.url);
const SERVICE_WORKER_FILE = 'sw.js';

function publicFiles(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) out.push({ path: relative(dir, full).split(sep).join('/'), bytes: readFileSync(full) });
    }
  };
  try {
    walk(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return out;
}

function serviceWorkerPlugin(): Plugin {
  let config: ResolvedConfig;
  return {
    name: 'webtune-service-worker',
    apply: 'build',
    enforce: 'post',
    configResolved(resolved) {
      config = resolved;
    },
    async generateBundle(_, bundle) {
      const hash = createHash('sha256');
      const files: string[] = [];
      for (const [fileName, output] of Object.entries(bundle).sort(([a], [b]) => a.localeCompare(b))) {
        if (fileName.endsWith('.map')) continue;
        files.push(fileName);
        hash.update(fileName).update(output.type === 'chunk' ? output.code : output.source);
      }
      for (const file of config.publicDir ? publicFiles(config.publicDir) : []) {
        files.push(file.path);
        hash.update(file.path).update(file.bytes);
      }
      const compiled = await transform(readFileSync(SOURCE, 'utf8'), { loader: 'ts', format: 'iife', target: 'es2022' });
      const version = hash.digest('hex').slice(0, 16);
      const header = `const PRECACHE = ${JSON.stringify(['./', ...files])};\nconst VERSION = ${JSON.stringify(version)};\n`;
      this.emitFile({ type: 'asset', fileName: SERVICE_WORKER_FILE, source: header + compiled.code });
    },
  };
}

function contentSecurityPolicyPlugin(connect: string[]): Plugin {
  return {
    name: 'webtune-content-security-policy',
    apply: 'build',
    // Right after the charset, before anything the policy governs.
    transformIndexHtml: (html) => {
      const charset = '<meta charset="utf-8" />';
      if (!html.includes(charset)) throw new Error(`index.html must start its head with ${charset}`);
      const policy = contentSecurityPolicy(connect).replaceAll("'", '&#39;');
      return html.replace(charset, `${charset}\n    <meta http-equiv="Content-Security-Policy" content="${policy}" />`);
    },
  };
}

export default defineConfig(({ command, mode }) => {
  const connect = connectSources(process.env.WEBTUNE_CONNECT_SRC);
  return {
    base: './',
    build: { target: 'es2022', outDir: mode === 'e2e' ? 'dist-e2e' : 'dist' },
    worker: { format: 'es' },
    define: {
      __WEBTUNE_TEST_HOOKS__: JSON.stringify(mode === 'e2e'),
      // The connect sources the page's policy allows, so the engine can refuse other hosts up front; none outside a build.
      __WEBTUNE_CONNECT_SRC__: JSON.stringify(command === 'build' ? connect : null),
    },
    plugins: [serviceWorkerPlugin(), contentSecurityPolicyPlugin(connect)],
  };
});

#!/usr/bin/env node
// node scripts/bench-gpu-pack.mjs: prepares .gpu/ (git-ignored) for a lent GPU machine, which has
// Python with PyTorch, transformers and PEFT but no Node and no network (../shared/GPU.md): this
// machine's node binary and Dawn's dawn.node, xz-compressed, the benchmark bundled into one file,
// and run.sh, which checks every GPU kernel schedule against its CPU twin (bench --check), then runs
// the webtune benchmark and bench/torch_peft.py with the same arguments on that GPU and prints the
// ratio. Carry `.gpu` (and `.gl`, see README) with the device tool's run.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './bundle.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(root, '.gpu');
const webgpu = resolve(root, 'node_modules/webgpu');
const dawn = 'node_modules/webgpu/dist/linux-x64/dawn.node';

rmSync(out, { recursive: true, force: true });
mkdirSync(resolve(out, dirname(dawn)), { recursive: true });
// Everything but Dawn goes into the one file: the GPU machine has no node_modules.
copyFileSync(await bundle('src/bench/main.ts', 'bench-gpu', { external: ['webgpu'] }), resolve(out, 'bench.mjs'));
for (const file of ['index.js', 'package.json']) copyFileSync(resolve(webgpu, file), resolve(out, 'node_modules/webgpu', file));
const xz = (from, to) => writeFileSync(to, execFileSync('xz', ['-c', '-6', '-T0', from], { maxBuffer: 1 << 30 }));
xz(resolve(root, dawn), resolve(out, `${dawn}.xz`));
xz(process.execPath, resolve(out, 'node.xz'));

writeFileSync(
  resolve(out, 'bench-run.mjs'),
  `import { main } from './bench.mjs';
process.exitCode = await main(process.argv.slice(2));
// Dawn keeps the event loop alive; leave once the output is flushed.
process.stdout.write('', () => process.exit(process.exitCode ?? 0));
`,
);

writeFileSync(
  resolve(out, 'run.sh'),
  `#!/bin/sh
# On the GPU machine, from the repository root: sh .gpu/run.sh <bench options>, e.g.
#   sh .gpu/run.sh --config smollm2-135m --seq 512 --batch 4 --r 16 --targets q_proj,k_proj,v_proj --warmup 2 --steps 10
# First compares every GPU kernel schedule with its CPU twin at these shapes (--check: the GPU
# paths proven before they are timed), then runs the webtune benchmark and the PyTorch + PEFT
# reference with the same options on this GPU, writes the three JSON files to \\$OUT (or
# bench/results) and prints them, the check's verdict and the throughput ratio.
set -e
cd "$(dirname "$0")/.."
[ -x .gpu/node ] || { xz -dk .gpu/node.xz; chmod +x .gpu/node; }
[ -f .gpu/${dawn} ] || xz -dk .gpu/${dawn}.xz
if [ -d .gl ]; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "$VK_DRIVER_FILES" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
dir="\${OUT:-bench/results}"
mkdir -p "$dir"
rm -f "$dir/check.json"
if ! .gpu/node .gpu/bench-run.mjs --check "$@" --out "$dir/check.json"; then
  echo "run.sh: the check failed: a GPU schedule disagrees with its CPU twin or the check stopped (see check.json)"
fi
.gpu/node .gpu/bench-run.mjs "$@" --out "$dir/webtune.json"
PYTHONUNBUFFERED=1 python3 bench/torch_peft.py "$@" --out "$dir/torch-peft.json"
python3 - "$dir/webtune.json" "$dir/torch-peft.json" "$dir/check.json" <<'PY'
import json, os, sys
w, t = (json.load(open(p)) for p in sys.argv[1:3])
c = json.load(open(sys.argv[3])) if os.path.exists(sys.argv[3]) else {"ok": None, "worst": "the check did not run to the end"}
print(json.dumps({
    "device": [w["device"]["name"], t["device"]["name"]],
    "check_ok": c["ok"], "check_worst": c["worst"],
    "webtune_tokens_per_s": w["tokens_per_s"], "torch_peft_tokens_per_s": t["tokens_per_s"],
    "tokens_per_s_ratio_webtune_over_torch": w["tokens_per_s"] / t["tokens_per_s"],
    "webtune_peak_memory_gib": w["peak_memory_gib"], "torch_peft_peak_memory_gib": t["peak_memory_gib"],
}))
PY
`,
);
console.log(`${out}: carry ".gpu" and run "sh .gpu/run.sh <bench options>" on the GPU machine`);

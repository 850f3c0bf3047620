/**
 * llama.cpp's own dequantizers as the judge of ours, bit for bit: ggml's `dequantize_row_*` (and
 * the f16/bf16 row converters) from the very libggml-base that node-llama-cpp's prebuilt
 * llama.cpp runs, called through Python's ctypes (tests/gguf/ggml_dequantize.py, standard
 * library only), on blocks our quantizers wrote and on arbitrary blocks.
 */
import { spawnSync } from 'node:child_process';
import { readdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggmlType, type GgmlTypeName } from '../../src/gguf/ggml-types';
import { dequantize, quantize } from '../../src/gguf/quants';
import { awkwardValues, randomBlocks } from './quant-data';

const BINARY_PACKAGES: Record<string, string> = {
  'linux-x64': '@node-llama-cpp/linux-x64',
  'linux-arm64': '@node-llama-cpp/linux-arm64',
  'darwin-arm64': '@node-llama-cpp/mac-arm64-metal',
  'darwin-x64': '@node-llama-cpp/mac-x64',
};

async function findGgmlBase(dir: string): Promise<string | null> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = await findGgmlBase(full);
      if (found) return found;
    } else if (/^libggml-base\.(so|dylib)$/.test(entry.name)) {
      return full;
    }
  }
  return null;
}

let dir: string;
let library: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-ggml-'));
  const pkg = BINARY_PACKAGES[`${process.platform}-${process.arch}`];
  if (!pkg) throw new Error(`no node-llama-cpp prebuilt package known for ${process.platform}-${process.arch}`);
  const { getBinsDir } = (await import(/* @vite-ignore */ pkg)) as { getBinsDir(): { binsDir: string } };
  const found = await findGgmlBase(getBinsDir().binsDir);
  if (!found) throw new Error(`libggml-base not found under ${getBinsDir().binsDir}`);
  library = found;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

interface Job {
  label: string;
  type: GgmlTypeName;
  bytes: Uint8Array;
  elements: number;
}

/** ggml's f32 values for every job, from one Python run. */
async function ggmlDequantize(jobs: Job[]): Promise<Float32Array[]> {
  const specs = await Promise.all(
    jobs.map(async (job, i) => {
      const input = path.join(dir, `in-${i}.bin`);
      await writeFile(input, job.bytes);
      return { type: job.type, elements: job.elements, input, output: path.join(dir, `out-${i}.bin`) };
    }),
  );
  const jobsFile = path.join(dir, 'jobs.json');
  await writeFile(jobsFile, JSON.stringify(specs));
  const run = spawnSync('python3', [path.join(__dirname, 'ggml_dequantize.py'), library, jobsFile], { encoding: 'utf8' });
  if (run.error || run.status !== 0) throw new Error(`python3 ggml_dequantize.py failed: ${run.error?.message ?? run.stderr}`);
  return Promise.all(specs.map(async (s) => new Float32Array((await readFile(s.output)).buffer.slice(0))));
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe("ggml's dequantizers (llama.cpp 3.21.1 prebuilt) agree with ours bit for bit", () => {
  it('on blocks our quantizers wrote and on arbitrary blocks, for every format webtune reads', async () => {
    const formats: GgmlTypeName[] = ['Q8_0', 'Q4_0', 'Q5_0', 'Q5_1', 'Q4_K', 'Q5_K', 'Q6_K'];
    // Gaussian-like weights whose scale changes block to block (awkwardValues' extremes would leave a
    // K super-block mostly zero, which tests little here).
    const values = awkwardValues(4 * 512, 31).map((v, i) =>
      Math.floor(i / 32) % 8 === 1 ? 0 : Math.tanh(v) * (1 + (Math.floor(i / 32) % 5)),
    );
    const jobs: Job[] = [];
    for (const type of formats) {
      jobs.push({ label: `${type} quantized by webtune`, type, bytes: quantize(type, values, 512), elements: values.length });
      const blocks = 48;
      jobs.push({
        label: `${type} arbitrary blocks`,
        type,
        bytes: randomBlocks(type, blocks, 7),
        elements: blocks * ggmlType(type).blockSize,
      });
    }
    for (const type of ['F16', 'BF16'] as const)
      jobs.push({ label: type, type, bytes: quantize(type, values, 512), elements: values.length });

    const theirs = await ggmlDequantize(jobs);
    jobs.forEach((job, i) => {
      const ours = dequantize(job.type, job.bytes, job.elements);
      expect(theirs[i].length, job.label).toBe(job.elements);
      expect(bits(ours), job.label).toEqual(bits(theirs[i]));
    });
    // Neither set is degenerate: most values are non-zero.
    for (const [i, t] of theirs.entries()) expect(t.filter((v) => v !== 0).length, jobs[i].label).toBeGreaterThan(t.length / 2);
  });
});

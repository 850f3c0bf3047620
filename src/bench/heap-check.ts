/**
 * `npm run -s check-heap -- <model folder>`: opens a Hugging Face folder and uploads its weights
 * the way the engine does (openModel, then LlamaModel.load: one tensor read by range, converted and
 * uploaded at a time), sampling the JS heap and ArrayBuffer memory throughout, and prints the peaks
 * beside the checkpoint's size as one JSON object. The JS side must stay near one tensor, whatever
 * the checkpoint's size; on SwiftShader the GPU buffers live in process memory too, so `rss` grows
 * by the weights, and it is reported but not what is bounded.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../cli/usage';
import { Gpu } from '../gpu/context';
import { createNodeDevice } from '../gpu/node-device';
import type { FileSource } from '../model/file-source';
import { LlamaModel } from '../model/llama';
import { nodeFileSource } from '../model/node-file-source';
import { readSafetensorsHeader } from '../model/safetensors';
import { openModel } from '../model/weights';
import { QWEN2_5_1_5B, writeRandomCheckpoint } from './random-checkpoint';

const USAGE = `npm run -s check-heap -- <model folder> | --random-qwen2.5-1.5b [--keep <dir>]

Loads the folder's weights onto the GPU as the engine does and prints one JSON object: the
checkpoint's size, its largest tensor, and the peaks of process.memoryUsage() (heapUsed,
arrayBuffers, rss) sampled during the load, against the values before it.

  --random-qwen2.5-1.5b   first write a random BF16 Qwen2.5-1.5B-shaped checkpoint (3.09 GB) to a
                          temporary folder, measure it, and delete it (or keep it in --keep <dir>)
`;

interface Usage {
  heap_used: number;
  array_buffers: number;
  rss: number;
}

export interface HeapReport {
  folder: string;
  checkpoint_bytes: number;
  tensors: number;
  largest_tensor: { name: string; bytes: number; dtype: string };
  before: Usage;
  peak: Usage;
  /** Peak minus before. */
  growth: Usage;
  weights_on_gpu_bytes: number;
  samples: number;
  load_ms: number;
}

const usage = (): Usage => {
  const m = process.memoryUsage();
  return { heap_used: m.heapUsed, array_buffers: m.arrayBuffers, rss: m.rss };
};

/** Opens and uploads the model in `dir` on `gpu`, sampling memory after every read and tensor and every few ms between. */
export async function measureLoadHeap(gpu: Gpu, dir: string): Promise<HeapReport> {
  const before = usage();
  const peak = { ...before };
  let samples = 0;
  const sample = () => {
    const now = usage();
    samples++;
    peak.heap_used = Math.max(peak.heap_used, now.heap_used);
    peak.array_buffers = Math.max(peak.array_buffers, now.array_buffers);
    peak.rss = Math.max(peak.rss, now.rss);
  };
  const files = nodeFileSource(dir);
  const source: FileSource = {
    ...files,
    read: async (p, begin, end) => {
      const bytes = await files.read(p, begin, end);
      sample();
      return bytes;
    },
  };
  const timer = setInterval(sample, 2);
  const start = performance.now();
  let model: LlamaModel | null = null;
  try {
    const opened = await openModel(source);
    const weights = {
      ...opened.weights,
      tensor: async (name: string, shape: number[]) => {
        const data = await opened.weights.tensor(name, shape);
        sample();
        return data;
      },
    };
    model = await LlamaModel.load(gpu, weights);
    await gpu.sync();
    sample();
    const headers = await Promise.all(opened.weights.files.map((f) => readSafetensorsHeader(files, f)));
    let largest = { name: '', bytes: 0, dtype: '' };
    let tensors = 0;
    let checkpoint = 0;
    for (const h of headers) {
      checkpoint += (await stat(path.join(dir, h.file))).size;
      for (const t of h.tensors.values()) {
        tensors++;
        if (t.end - t.begin > largest.bytes) largest = { name: t.name, bytes: t.end - t.begin, dtype: t.dtype };
      }
    }
    const growth = {
      heap_used: peak.heap_used - before.heap_used,
      array_buffers: peak.array_buffers - before.array_buffers,
      rss: peak.rss - before.rss,
    };
    return {
      folder: path.resolve(dir),
      checkpoint_bytes: checkpoint,
      tensors,
      largest_tensor: largest,
      before,
      peak,
      growth,
      weights_on_gpu_bytes: model.weights.bytes,
      samples,
      load_ms: Math.round(performance.now() - start),
    };
  } finally {
    clearInterval(timer);
    model?.destroy();
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'random-qwen2.5-1.5b': { type: 'boolean' }, keep: { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const random = values['random-qwen2.5-1.5b'] === true;
  if (random === (positionals.length === 1) || positionals.length > 1)
    throw new UsageError(`give one model folder or --random-qwen2.5-1.5b\n\n${USAGE}`);
  const dir = random ? (values.keep ?? (await mkdtemp(path.join(tmpdir(), 'webtune-heap-')))) : positionals[0];
  try {
    if (random) {
      const t = performance.now();
      const bytes = await writeRandomCheckpoint(dir, QWEN2_5_1_5B);
      process.stderr.write(
        `wrote ${bytes} bytes of random BF16 Qwen2.5-1.5B to ${dir} in ${Math.round((performance.now() - t) / 1000)} s\n`,
      );
    }
    const gpu = new Gpu(await createNodeDevice());
    const report = await measureLoadHeap(gpu, dir);
    process.stdout.write(`${JSON.stringify({ ...report, command: `check-heap ${argv.join(' ')}`, date: new Date().toISOString() })}\n`);
    return 0;
  } finally {
    if (random && !values.keep) await rm(dir, { recursive: true, force: true });
  }
}

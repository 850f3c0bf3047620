/**
 * Model repositories as the Hub would serve them, built in memory for download tests: stories260K
 * split into safetensors shards with an index (or a wider random model on its tokenizer), and the
 * Hub's file list of them with sizes, sha256 (`lfs.oid`) and git blob ids computed by node:crypto,
 * independently of the code under test.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseModelConfig } from '../../src/model/config';
import { readSafetensors, writeSafetensors } from '../../src/model/safetensors';
import { expectedTensorShapes } from '../../src/model/weights';
import { randomArray } from './numeric';

/** Not paths.ts: Playwright loads this file as an ES module, without __dirname. */
const STORIES_260K = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/models/stories260K');

export type RepoFiles = Map<string, Uint8Array>;

interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

const SMALL_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json'];

/** The layer a tensor belongs to (-1: the embedding, Infinity: the final norm and head), to split shards in model order. */
function layerOf(name: string): number {
  const m = /^model\.layers\.(\d+)\./.exec(name);
  if (m) return Number(m[1]);
  return name.startsWith('model.embed_tokens') ? -1 : Number.POSITIVE_INFINITY;
}

/** The folder's files with its weights in `shards` files of about equal size, in model order, and their index. */
function sharded(config: Buffer | string, tensors: Tensor[], shards: number): RepoFiles {
  const files: RepoFiles = new Map();
  files.set('config.json', new Uint8Array(Buffer.from(config)));
  for (const name of SMALL_FILES.slice(1)) files.set(name, new Uint8Array(readFileSync(path.join(STORIES_260K, name))));
  const ordered = [...tensors].sort((a, b) => layerOf(a.name) - layerOf(b.name) || (a.name < b.name ? -1 : 1));
  const total = ordered.reduce((sum, t) => sum + t.data.byteLength, 0);
  const groups: Tensor[][] = Array.from({ length: shards }, () => []);
  let done = 0;
  for (const t of ordered) {
    groups[Math.min(shards - 1, Math.floor((done / total) * shards))].push(t);
    done += t.data.byteLength;
  }
  const weightMap: Record<string, string> = {};
  groups.forEach((group, i) => {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
    files.set(name, writeSafetensors(group));
    for (const t of group) weightMap[t.name] = name;
  });
  files.set(
    'model.safetensors.index.json',
    new TextEncoder().encode(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap })),
  );
  return files;
}

/** stories260K with its weights split over `shards` files. */
export function shardedStories(shards: number): RepoFiles {
  const { tensors } = readSafetensors(new Uint8Array(readFileSync(path.join(STORIES_260K, 'model.safetensors'))), 'model.safetensors');
  const list = [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
  return sharded(readFileSync(path.join(STORIES_260K, 'config.json')), list, shards);
}

/**
 * A random Llama on stories260K's tokenizer, `hidden` wide: at 512 wide and 4 layers its weights are
 * 55 MB, so a shard spans several 16 MiB download chunks.
 */
export function wideStories(hidden: number, layers: number, shards: number): RepoFiles {
  const base = JSON.parse(readFileSync(path.join(STORIES_260K, 'config.json'), 'utf8')) as Record<string, unknown>;
  const json = { ...base, hidden_size: hidden, intermediate_size: 3 * hidden, num_hidden_layers: layers, num_key_value_heads: 8 };
  const config = parseModelConfig(json, 'config.json');
  const tensors: Tensor[] = [];
  let seed = 11;
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = name.endsWith('norm.weight') ? new Float32Array(n).fill(1) : randomArray(n, seed++, -0.05, 0.05);
    tensors.push({ name, shape, data });
  }
  return sharded(JSON.stringify(json, null, 2), tensors, shards);
}

export const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
export const gitBlobId = (bytes: Uint8Array) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

/** The Hub's `/api/models/<id>/tree/main` answer for these files: safetensors in LFS, the rest in git. */
export function hubTree(files: RepoFiles): object[] {
  const entries: object[] = [
    { type: 'file', oid: gitBlobId(new TextEncoder().encode('*.safetensors filter=lfs')), size: 24, path: '.gitattributes' },
  ];
  for (const [name, bytes] of files) {
    const lfs = name.endsWith('.safetensors');
    const pointer = new TextEncoder().encode(
      `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256Hex(bytes)}\nsize ${bytes.length}\n`,
    );
    entries.push(
      lfs
        ? {
            type: 'file',
            oid: gitBlobId(pointer),
            size: bytes.length,
            lfs: { oid: sha256Hex(bytes), size: bytes.length, pointerSize: pointer.length },
            path: name,
          }
        : { type: 'file', oid: gitBlobId(bytes), size: bytes.length, path: name },
    );
  }
  return entries;
}

/**
 * One logical GGUF model over one file or the shards of a split one (llama.cpp's gguf-split:
 * `name-00001-of-0000N.gguf` ... with `split.no`, `split.count` and `split.tensors.count` in each
 * shard; the first shard carries the model's metadata). Tensors are looked up by name across
 * shards and read one at a time, only their byte range.
 */
import type { ByteSource } from './byte-source';
import { GgufShardError } from './errors';
import { type GgufHeader, type GgufTensorInfo, readGgufHeader } from './reader';
import { type GgufMetadata, numberOf } from './values';

export interface GgufTensor extends GgufTensorInfo {
  /** Index into `GgufFile.shards`. */
  shard: number;
  /** Absolute offset of the data in its shard's file. */
  fileOffset: number;
}

export interface GgufFile {
  /** The first shard's name, for messages. */
  name: string;
  metadata: GgufMetadata;
  /** By name, in file order (shard by shard). */
  tensors: Map<string, GgufTensor>;
  shards: { source: ByteSource; header: GgufHeader }[];
  readTensorBytes(tensor: GgufTensor): Promise<Uint8Array>;
}

const SHARD_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** The file name gguf-split gives shard `index` (0-based) of `count`. */
export function ggufShardName(base: string, index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `${base}-${pad(index + 1)}-of-${pad(count)}.gguf`;
}

/** `model-00002-of-00003.gguf` -> { base: 'model', index: 1, count: 3 }; null for other names. */
export function parseGgufShardName(fileName: string): { base: string; index: number; count: number } | null {
  const m = SHARD_NAME.exec(fileName);
  if (!m) return null;
  const index = Number(m[2]) - 1;
  const count = Number(m[3]);
  return index >= 0 && index < count ? { base: m[1], index, count } : null;
}

interface SplitInfo {
  no: number;
  count: number;
  tensors: number | null;
}

function splitInfo(header: GgufHeader): SplitInfo | null {
  const count = header.metadata.get('split.count');
  if (!count) return null;
  const no = numberOf(header.metadata.get('split.no'));
  const n = numberOf(count);
  if (no === null || n === null || !Number.isInteger(no) || !Number.isInteger(n) || n < 1 || no < 0 || no >= n) {
    throw new GgufShardError(header.file, `its split.no / split.count (${no} / ${n}) are not a shard index and a shard count`);
  }
  return { no, count: n, tensors: numberOf(header.metadata.get('split.tensors.count')) };
}

/** Reads the header of every source and checks that together they are one whole model. */
export async function openGguf(sources: ByteSource | ByteSource[]): Promise<GgufFile> {
  const list = Array.isArray(sources) ? sources : [sources];
  if (list.length === 0) throw new RangeError('openGguf needs at least one file');
  const headers = await Promise.all(list.map((s) => readGgufHeader(s)));
  const splits = headers.map(splitInfo);

  let order = list.map((_, i) => i);
  if (list.length > 1 || (splits[0] && splits[0].count > 1)) {
    const count = splits[0]?.count ?? 0;
    splits.forEach((s, i) => {
      if (!s) throw new GgufShardError(headers[i].file, 'it has no split.count, so it is not a shard of a split model');
      if (s.count !== count)
        throw new GgufShardError(headers[i].file, `it is a shard of ${s.count} files, but ${headers[0].file} is one of ${count}`);
    });
    const byNo = new Map<number, number>();
    splits.forEach((s, i) => {
      const other = byNo.get(s!.no);
      if (other !== undefined)
        throw new GgufShardError(headers[i].file, `it is shard ${s!.no + 1} of ${count}, as is ${headers[other].file}`);
      byNo.set(s!.no, i);
    });
    const missing = Array.from({ length: count }, (_, no) => no).filter((no) => !byNo.has(no));
    if (missing.length) {
      throw new GgufShardError(
        headers[0].file,
        `the model is split into ${count} files, but shard(s) ${missing.map((no) => no + 1).join(', ')} were not given`,
      );
    }
    order = Array.from({ length: count }, (_, no) => byNo.get(no)!);
  }

  const tensors = new Map<string, GgufTensor>();
  order.forEach((sourceIndex, shard) => {
    const header = headers[sourceIndex];
    for (const t of header.tensors) {
      if (tensors.has(t.name)) throw new GgufShardError(header.file, `tensor "${t.name}" is also in another shard`);
      tensors.set(t.name, { ...t, shard, fileOffset: header.dataOffset + t.offset });
    }
  });
  const first = headers[order[0]];
  const expected = splits[order[0]]?.tensors;
  if (expected !== null && expected !== undefined && expected !== tensors.size) {
    throw new GgufShardError(first.file, `split.tensors.count says ${expected} tensors, but the shards hold ${tensors.size}`);
  }
  const shards = order.map((i) => ({ source: list[i], header: headers[i] }));
  return {
    name: first.file,
    metadata: first.metadata,
    tensors,
    shards,
    readTensorBytes: (t) => shards[t.shard].source.read(t.fileOffset, t.byteSize),
  };
}

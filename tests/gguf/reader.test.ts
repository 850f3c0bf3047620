import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobByteSource, fileSourceBytes } from '../../src/gguf/byte-source';
import { encodeGguf, joinParts } from '../../src/gguf/encode';
import { ggufShardName, openGguf, parseGgufShardName } from '../../src/gguf/file';
import { GgufShardError } from '../../src/gguf/errors';
import { ggmlTypeById } from '../../src/gguf/ggml-types';
import { nodeByteSource } from '../../src/gguf/node-byte-source';
import { dequantize } from '../../src/gguf/quants';
import { readGgufHeader } from '../../src/gguf/reader';
import { gguf, type GgufValue, GgufValueType } from '../../src/gguf/values';
import { nodeFileSource } from '../../src/model/node-file-source';
import { randomArray } from '../helpers/numeric';
import { everyValueType, recordingSource, sampleFile, sampleTensors } from './helpers';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'webtune-gguf-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('readGgufHeader', () => {
  it('reads back every value type and every tensor info the writer wrote', async () => {
    const bytes = sampleFile();
    const header = await readGgufHeader(recordingSource(bytes));
    expect(header.version).toBe(3);
    expect(header.alignment).toBe(64);
    expect(header.dataOffset % 64).toBe(0);
    expect([...header.metadata.entries()]).toEqual(everyValueType());

    const written = sampleTensors();
    expect(header.tensors.map((t) => t.name)).toEqual(written.map((t) => t.name));
    let expectedOffset = 0;
    for (const [i, t] of header.tensors.entries()) {
      expect(t.dims).toEqual(written[i].dims);
      expect(t.type.name).toBe(written[i].type);
      expect(t.offset).toBe(expectedOffset);
      expect(t.byteSize).toBe(written[i].data.length);
      expect(bytes.subarray(header.dataOffset + t.offset, header.dataOffset + t.offset + t.byteSize)).toEqual(written[i].data);
      expectedOffset = Math.ceil((t.offset + t.byteSize) / 64) * 64;
    }
    expect(header.dataOffset + expectedOffset).toBe(bytes.length);
  });

  it("agrees with Hugging Face's GGUF parser (an independent reader) on metadata, tensors and the data offset", async () => {
    const bytes = sampleFile();
    const file = path.join(dir, 'sample.gguf');
    await writeFile(file, bytes);
    const theirs = await hfGguf(file, { allowLocalFile: true });
    const ours = await readGgufHeader(await nodeByteSource(file));
    expect(Number(theirs.tensorDataOffset)).toBe(ours.dataOffset);
    const meta = theirs.metadata as Record<string, unknown>;
    expect(meta['test.string']).toBe('héllo, wörld ✓');
    expect(meta['test.u32']).toBe(4_000_000_000);
    expect(meta['test.i16']).toBe(-32000);
    expect(meta['test.u64']).toBe(2n ** 60n + 1n);
    expect(meta['test.arr.string']).toEqual(['a', '', '▁the', '<0x0A>']);
    expect(meta['test.arr.bool']).toEqual([true, false, true]);
    expect(theirs.tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual(
      ours.tensors.map((t) => [t.name, t.dims, t.type.id, t.offset]),
    );
  });

  it('writes and reads a Qwen2-sized vocabulary header (152k tokens and merges, megabytes of metadata)', async () => {
    const n = 151936;
    const tokens = Array.from({ length: n }, (_, i) => `Ġtok${i}`);
    const merges = Array.from({ length: n - 549 }, (_, i) => `Ġt ok${i}`);
    const types = Int32Array.from({ length: n }, (_, i) => 1 + (i % 6));
    const meta: [string, GgufValue][] = [
      ['tokenizer.ggml.tokens', gguf.strings(tokens)],
      ['tokenizer.ggml.merges', gguf.strings(merges)],
      ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ];
    const bytes = joinParts(encodeGguf(meta, [{ name: 'w', dims: [4], type: 'F32', data: new Uint8Array(16) }]));
    expect(bytes.length).toBeGreaterThan(4 << 20);
    const started = performance.now();
    const header = await readGgufHeader(recordingSource(bytes));
    console.info(
      `a ${bytes.length}-byte header with ${n} tokens and ${merges.length} merges parsed in ${(performance.now() - started).toFixed(0)} ms`,
    );
    expect(header.metadata.get('tokenizer.ggml.tokens')).toEqual(meta[0][1]);
    expect(header.metadata.get('tokenizer.ggml.merges')).toEqual(meta[1][1]);
    expect(header.metadata.get('tokenizer.ggml.token_type')).toEqual(meta[2][1]);
    expect(header.tensors[0].name).toBe('w');
  });

  it('reads only the header of a large file, in ranges', async () => {
    const big = new Uint8Array(8 << 20);
    const bytes = joinParts(
      encodeGguf([['general.architecture', gguf.string('llama')]], [{ name: 'w', dims: [big.length], type: ggmlTypeById(24)!, data: big }]),
    );
    const source = recordingSource(bytes);
    const header = await readGgufHeader(source);
    expect(header.tensors[0].byteSize).toBe(big.length);
    expect(source.bytesRead).toBeLessThanOrEqual(1 << 20);
  });

  it('reads the same from a Blob, a FileSource folder entry and a Node file', async () => {
    const bytes = sampleFile();
    await writeFile(path.join(dir, 'model.gguf'), bytes);
    const fromBlob = await readGgufHeader(blobByteSource(new Blob([bytes]), 'model.gguf'));
    const fromFolder = await readGgufHeader(await fileSourceBytes(nodeFileSource(dir), 'model.gguf'));
    const fromNode = await readGgufHeader(await nodeByteSource(path.join(dir, 'model.gguf')));
    for (const h of [fromFolder, fromNode]) {
      expect(h.tensors).toEqual(fromBlob.tensors);
      expect(h.metadata).toEqual(fromBlob.metadata);
    }
    expect(fromFolder.file).toContain('model.gguf');
  });
});

describe('openGguf', () => {
  /** The sample tensors split over `count` shards the way gguf-split writes them. */
  function shards(count: number, opts: { tensorsCount?: number } = {}) {
    const tensors = sampleTensors();
    const per = Math.ceil(tensors.length / count);
    return Array.from({ length: count }, (_, no) => {
      const own = tensors.slice(no * per, (no + 1) * per);
      const meta: [string, GgufValue][] = [
        ...(no === 0 ? [['general.architecture', gguf.string('llama')] as [string, GgufValue]] : []),
        ['split.no', gguf.u16(no)],
        ['split.count', gguf.u16(count)],
        ['split.tensors.count', gguf.i32(opts.tensorsCount ?? tensors.length)],
      ];
      return recordingSource(joinParts(encodeGguf(meta, own)), ggufShardName('model', no, count));
    });
  }

  it('joins the shards of a split model in split.no order, whatever order they are given in', async () => {
    const [a, b, c] = shards(3);
    const file = await openGguf([c, a, b]);
    expect(file.name).toBe('model-00001-of-00003.gguf');
    expect(file.metadata.get('general.architecture')).toEqual(gguf.string('llama'));
    expect([...file.tensors.keys()]).toEqual(sampleTensors().map((t) => t.name));
    for (const t of sampleTensors()) {
      const info = file.tensors.get(t.name)!;
      expect(await file.readTensorBytes(info)).toEqual(t.data);
    }
    const q = file.tensors.get('d.q4_k')!;
    expect(dequantize('Q4_K', await file.readTensorBytes(q), q.elements)).toHaveLength(512);
  });

  it('names and parses shard files as gguf-split does', () => {
    expect(ggufShardName('Qwen2.5-7B-Q4_K_M', 0, 2)).toBe('Qwen2.5-7B-Q4_K_M-00001-of-00002.gguf');
    expect(parseGgufShardName('Qwen2.5-7B-Q4_K_M-00002-of-00002.gguf')).toEqual({ base: 'Qwen2.5-7B-Q4_K_M', index: 1, count: 2 });
    expect(parseGgufShardName('model.gguf')).toBeNull();
    expect(parseGgufShardName('m-00003-of-00002.gguf')).toBeNull();
  });

  it('refuses incomplete, repeated or mismatched shards with a GgufShardError', async () => {
    const [a, b, c] = shards(3);
    await expect(openGguf([a, c])).rejects.toThrow(/split into 3 files, but shard\(s\) 2 were not given/);
    await expect(openGguf(a)).rejects.toThrow(GgufShardError);
    await expect(openGguf([a, b, b])).rejects.toThrow(/shard 2 of 3, as is/);
    const [x, y] = shards(2);
    await expect(openGguf([a, b, y])).rejects.toThrow(/shard of 2 files/);
    await expect(openGguf([x, recordingSource(sampleFile())])).rejects.toThrow(/no split.count/);
    const wrongCount = shards(2, { tensorsCount: 9 });
    await expect(openGguf(wrongCount)).rejects.toThrow(/split.tensors.count says 9 tensors, but the shards hold 5/);
  });

  it('opens a single unsplit file', async () => {
    const file = await openGguf(recordingSource(sampleFile()));
    expect(file.shards).toHaveLength(1);
    expect(file.tensors.size).toBe(5);
    const t = file.tensors.get('a.f32')!;
    expect(Array.from(dequantize('F32', await file.readTensorBytes(t), t.elements))).toEqual(Array.from(randomArray(15, 1)));
    expect(file.metadata.get('test.u8')).toEqual({ type: GgufValueType.UINT8, value: 250 });
  });
});

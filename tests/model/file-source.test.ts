import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MissingFileError, ModelLoadError } from '../../src/model/errors';
import { chunkedFile, filesFromList } from '../../src/model/file-source';
import { nodeFileSource } from '../../src/model/node-file-source';
import { openModel } from '../../src/model/weights';
import { STORIES_DIR, tempDir } from './helpers';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A File as a folder picker yields it: `webkitRelativePath` includes the picked folder's name. */
function pickedFile(relativePath: string, content: BlobPart): File {
  const file = new File([content], path.basename(relativePath));
  Object.defineProperty(file, 'webkitRelativePath', { value: relativePath });
  return file;
}

describe('chunkedFile', () => {
  it('reads any range of a file kept in chunks, across boundaries, as the same bytes the whole file has', async () => {
    const whole = Uint8Array.from({ length: 103 }, (_, i) => (i * 37) % 251);
    const cuts = [0, 10, 10, 40, 95, 103];
    const file = chunkedFile(cuts.slice(1).map((end, i) => new Blob([whole.slice(cuts[i], end)])));
    expect(file.size).toBe(103);
    for (const [b, e] of [
      [0, 103],
      [0, 10],
      [5, 15],
      [10, 40],
      [9, 96],
      [39, 41],
      [102, 103],
      [50, 50],
      [103, 103],
    ]) {
      expect(await file.read(b, e)).toEqual(whole.subarray(b, e));
    }
    const source = filesFromList(new Map([['model.safetensors', file]]), 'chunks');
    expect(await source.read('model.safetensors', 8, 12)).toEqual(whole.subarray(8, 12));
    await expect(source.read('model.safetensors', 100, 104)).rejects.toThrow(/truncated/);
  });
});

describe('filesFromList', () => {
  it('finds files of a picked folder by their path inside it, preferring the least nested', async () => {
    const source = filesFromList(
      [
        pickedFile('my-model/sub/config.json', 'nested'),
        pickedFile('my-model/config.json', 'top'),
        pickedFile('my-model/onnx/model.onnx', 'x'),
      ],
      'folder my-model',
    );
    expect(await source.has('config.json')).toBe(true);
    expect(text(await source.read('config.json'))).toBe('top');
    expect(text(await source.read('sub/config.json'))).toBe('nested');
    expect(text(await source.read('./config.json'))).toBe('top');
    expect(await source.has('model.onnx')).toBe(true);
    expect(await source.has('tokenizer.json')).toBe(false);
    expect(source.description).toBe('folder my-model');
  });

  it('matches loose dropped files by name and reads byte ranges', async () => {
    const source = filesFromList([new File(['0123456789'], 'data.bin')], 'dropped files');
    expect(await source.size('data.bin')).toBe(10);
    expect(text(await source.read('data.bin', 2, 5))).toBe('234');
    expect(text(await source.read('data.bin', 10, 10))).toBe('');
    await expect(source.read('data.bin', 5, 11)).rejects.toThrow(ModelLoadError);
    await expect(source.read('data.bin', 5, 11)).rejects.toThrow(/data\.bin.*truncated/);
    await expect(source.read('missing.bin')).rejects.toThrow(MissingFileError);
  });

  it('opens a model from in-memory blobs', async () => {
    const files = new Map<string, Blob>();
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
      files.set(`stories260K/${f}`, new Blob([await readFile(path.join(STORIES_DIR, f))]));
    }
    const { config, weights } = await openModel(filesFromList(files, 'stories260K'));
    expect(config.vocabSize).toBe(512);
    expect((await weights.tensor('model.norm.weight', [64])).length).toBe(64);
  });
});

describe('nodeFileSource', () => {
  it('reads whole files and ranges, and reports missing files', async () => {
    const dir = await tempDir('files');
    dirs.push(dir);
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'sub', 'a.txt'), 'hello world');
    const source = nodeFileSource(dir);
    expect(await source.has('sub/a.txt')).toBe(true);
    expect(await source.has('sub')).toBe(false);
    expect(await source.has('b.txt')).toBe(false);
    expect(await source.size('sub/a.txt')).toBe(11);
    expect(text(await source.read('sub/a.txt'))).toBe('hello world');
    expect(text(await source.read('sub/a.txt', 6, 11))).toBe('world');
    await expect(source.read('sub/a.txt', 6, 12)).rejects.toThrow(/a\.txt.*truncated/);
    const missing = await source.read('b.txt').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MissingFileError);
    expect((missing as MissingFileError).file).toBe('b.txt');
    await expect(source.size('b.txt')).rejects.toThrow(MissingFileError);
  });

  it('refuses paths outside the folder', async () => {
    const source = nodeFileSource(STORIES_DIR);
    await expect(source.read('../stories260K/config.json')).resolves.toBeInstanceOf(Uint8Array);
    await expect(source.read('../../golden/stories260K-qkv-r4/case.json')).rejects.toThrow(/outside the model folder/);
  });
});

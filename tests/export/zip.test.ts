import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { AdapterImportError } from '../../src/export/errors';
import { unzipToFileSource, zipFiles } from '../../src/export/zip';
import { expectRefusal } from './helpers';

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (s: string) => new TextEncoder().encode(s);

describe('zipFiles / unzipToFileSource', () => {
  it('round-trips files, with nested paths and byte ranges', async () => {
    const big = new Uint8Array(100_000).map((_, i) => (i * 31) % 251);
    const source = unzipToFileSource(zipFiles({ 'adapter_config.json': text('{"r":4}'), 'weights.bin': big }), 'a.zip');
    expect(source.description).toBe('a.zip');
    expect(await source.has('adapter_config.json')).toBe(true);
    expect(await source.has('missing.json')).toBe(false);
    expect(new TextDecoder().decode(await source.read('adapter_config.json'))).toBe('{"r":4}');
    expect(await source.size('weights.bin')).toBe(big.length);
    expect([...(await source.read('weights.bin', 10, 14))]).toEqual([...big.subarray(10, 14)]);
  });

  it('drops a single top-level folder and the macOS resource forks', async () => {
    const zip = zipSync({
      'my-adapter/': new Uint8Array(0),
      'my-adapter/adapter_config.json': text('{}'),
      '__MACOSX/my-adapter/._adapter_config.json': bytes(0, 5, 22),
      'my-adapter/._adapter_config.json': bytes(0, 5, 22),
    });
    const source = unzipToFileSource(zip, 'my-adapter.zip');
    expect(new TextDecoder().decode(await source.read('adapter_config.json'))).toBe('{}');
  });

  it('refuses a truncated zip', async () => {
    const zip = zipFiles({ 'adapter_config.json': text('{"peft_type":"LORA"}'), 'adapter_model.safetensors': new Uint8Array(5000).fill(7) });
    for (const length of [zip.length - 1, zip.length - 30, Math.floor(zip.length / 2), 10, 0]) {
      await expectRefusal(() => unzipToFileSource(zip.subarray(0, length), 'adapter.zip'), AdapterImportError, 'adapter.zip is not a valid zip file', 'truncated or damaged');
    }
  });

  it('refuses a zip whose contents were damaged, by checksum', async () => {
    const payload = new Uint8Array(256).map((_, i) => i);
    // Stored, not deflated: a flipped byte would otherwise come out as silently different data.
    // Entry data starts after the 30-byte local header and the name.
    const zip = zipSync({ 'adapter_model.safetensors': payload }, { level: 0 });
    const damaged = zip.slice();
    damaged[30 + 'adapter_model.safetensors'.length + 100] ^= 0xff;
    await expectRefusal(() => unzipToFileSource(damaged, 'adapter.zip'), AdapterImportError, 'checksum of "adapter_model.safetensors" does not match');
    const deflated = zipFiles({ 'adapter_model.safetensors': new Uint8Array(4096).map((_, i) => (i * 7) % 13) });
    const damagedDeflate = deflated.slice();
    damagedDeflate[30 + 'adapter_model.safetensors'.length + 5] ^= 0x55;
    await expectRefusal(() => unzipToFileSource(damagedDeflate, 'adapter.zip'), AdapterImportError, 'adapter.zip is not a valid zip file');
  });

  it('refuses a file that is not a zip, and an empty zip', async () => {
    await expectRefusal(() => unzipToFileSource(text('{"peft_type": "LORA"}'), 'adapter_config.json'), AdapterImportError, 'adapter_config.json is not a valid zip file');
    await expectRefusal(() => unzipToFileSource(zipFiles({}), 'empty.zip'), AdapterImportError, 'empty.zip is a zip file with no files');
  });
});

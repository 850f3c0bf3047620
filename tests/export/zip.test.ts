import { Deflate, Inflate, zipSync } from 'fflate';
import { describe, expect, it, vi } from 'vitest';
import { AdapterImportError } from '../../src/export/errors';
import { unzipBlob, unzipToFileSource, ZIP_LIMITS, zipFiles } from '../../src/export/zip';
import { expectRefusal } from './helpers';
import { handZip } from './zip-builder';

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
    const zip = zipFiles({
      'adapter_config.json': text('{"peft_type":"LORA"}'),
      'adapter_model.safetensors': new Uint8Array(5000).fill(7),
    });
    for (const length of [zip.length - 1, zip.length - 30, Math.floor(zip.length / 2), 10, 0]) {
      await expectRefusal(
        () => unzipToFileSource(zip.subarray(0, length), 'adapter.zip'),
        AdapterImportError,
        'adapter.zip is not a valid zip file',
        'truncated or damaged',
      );
    }
  });

  it('refuses a zip whose contents were damaged, by checksum', async () => {
    const payload = new Uint8Array(256).map((_, i) => i);
    // Stored, not deflated: a flipped byte would otherwise come out as silently different data.
    // Entry data starts after the 30-byte local header and the name.
    const zip = zipSync({ 'adapter_model.safetensors': payload }, { level: 0 });
    const damaged = zip.slice();
    damaged[30 + 'adapter_model.safetensors'.length + 100] ^= 0xff;
    await expectRefusal(
      () => unzipToFileSource(damaged, 'adapter.zip'),
      AdapterImportError,
      'checksum of "adapter_model.safetensors" does not match',
    );
    const deflated = zipFiles({ 'adapter_model.safetensors': new Uint8Array(4096).map((_, i) => (i * 7) % 13) });
    const damagedDeflate = deflated.slice();
    damagedDeflate[30 + 'adapter_model.safetensors'.length + 5] ^= 0x55;
    await expectRefusal(() => unzipToFileSource(damagedDeflate, 'adapter.zip'), AdapterImportError, 'adapter.zip is not a valid zip file');
  });

  it('refuses a file that is not a zip, and an empty zip', async () => {
    await expectRefusal(
      () => unzipToFileSource(text('{"peft_type": "LORA"}'), 'adapter_config.json'),
      AdapterImportError,
      'adapter_config.json is not a valid zip file',
    );
    await expectRefusal(() => unzipToFileSource(zipFiles({}), 'empty.zip'), AdapterImportError, 'empty.zip is a zip file with no files');
  });
});

/** Raw deflate of `mebibytes` MiB of zeros, ~1 KB per MiB: repeated sync-flushed blocks of one MiB each. */
function zeroBomb(mebibytes: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  const deflater = new Deflate({ level: 9 }, (c) => chunks.push(c));
  deflater.push(new Uint8Array(2 ** 20));
  deflater.flush(true);
  const block = concat(chunks.splice(0));
  deflater.push(new Uint8Array(0), true);
  const tail = concat(chunks);
  const out = new Uint8Array(block.length * mebibytes + tail.length);
  for (let i = 0; i < mebibytes; i++) out.set(block, i * block.length);
  out.set(tail, block.length * mebibytes);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const garbage = new Uint8Array(64).fill(0xff);

describe('unzipToFileSource with hostile zips', () => {
  it('reads what the zip builder writes honestly, stored and deflated, zip64 fields included', async () => {
    const payload = text('{"peft_type":"LORA"}');
    const zip = handZip([
      { name: 'adapter_config.json', data: payload },
      { name: 'stored.bin', data: bytes(1, 2, 3), method: 0 },
      { name: 'zip64.bin', data: bytes(4, 5), method: 0, zip64: true },
    ]);
    const source = unzipToFileSource(zip, 'hand.zip');
    expect(new TextDecoder().decode(await source.read('adapter_config.json'))).toBe('{"peft_type":"LORA"}');
    expect([...(await source.read('stored.bin'))]).toEqual([1, 2, 3]);
    expect([...(await source.read('zip64.bin'))]).toEqual([4, 5]);
  });

  it('refuses entries that declare huge sizes before inflating anything', async () => {
    // The data is not valid deflate: reaching the inflater would give a different error.
    for (const uncompressedSize of [0xfffffff0, ZIP_LIMITS.maxEntryBytes + 1]) {
      await expectRefusal(
        () => unzipToFileSource(handZip([{ name: 'adapter_model.safetensors', rawData: garbage, uncompressedSize }]), 'bomb.zip'),
        AdapterImportError,
        'bomb.zip is refused',
        /entry "adapter_model.safetensors" declares \d+ MiB unpacked, more than the 1024 MiB allowed for one file/,
      );
    }
    await expectRefusal(
      () => unzipToFileSource(handZip([{ name: 'big.bin', rawData: garbage, uncompressedSize: 2 ** 40, zip64: true }]), 'bomb.zip'),
      AdapterImportError,
      'declares 1048576 MiB unpacked',
    );
    // 2^60 does not even fit a safe integer: refused as a damaged zip, still before inflating.
    await expectRefusal(
      () => unzipToFileSource(handZip([{ name: 'big.bin', rawData: garbage, uncompressedSize: 2 ** 60, zip64: true }]), 'bomb.zip'),
      AdapterImportError,
      'is not a valid zip file (a zip64 field holds 1152921504606846976',
    );
  });

  it('refuses entries whose declared sizes add up past the total cap, including entries that share their data', async () => {
    const limits = { maxEntries: 10, maxEntryBytes: 2 ** 20, maxTotalBytes: 2 ** 21 };
    const mib = new Uint8Array(2 ** 20);
    const three = handZip([
      { name: 'a.bin', data: mib },
      { name: 'b.bin', data: mib },
      { name: 'c.bin', data: mib },
    ]);
    await expectRefusal(() => unzipToFileSource(three, 'many.zip', limits), AdapterImportError, 'declare more than 2 MiB unpacked in all');
    // Fifield's overlapping bomb: many directory entries pointing at one compressed stream.
    const shared = handZip([
      { name: 'a.bin', data: mib },
      { name: 'b.bin', data: mib, localHeaderOf: 0 },
      { name: 'c.bin', data: mib, localHeaderOf: 0 },
    ]);
    await expectRefusal(() => unzipToFileSource(shared, 'overlap.zip', limits), AdapterImportError, 'declare more than 2 MiB unpacked');
  });

  it('stops inflating an entry as soon as its output passes the size it declares', async () => {
    const pushes = vi.spyOn(Inflate.prototype, 'push');
    try {
      // 1 GiB of zeros in 1 MB, declared as 1 KiB: a zip bomb whose directory lies.
      const bomb = handZip([{ name: 'adapter_model.safetensors', rawData: zeroBomb(1024), uncompressedSize: 1024, crc: 0 }]);
      await expectRefusal(
        () => unzipToFileSource(bomb, 'bomb.zip'),
        AdapterImportError,
        'bomb.zip is refused: entry "adapter_model.safetensors" inflates to more than the 1024 bytes it declares',
      );
      // One step of 32 KiB compressed input, not the 32 a full inflate of the 1 MB stream takes.
      expect(pushes).toHaveBeenCalledTimes(1);
    } finally {
      pushes.mockRestore();
    }
    const short = handZip([{ name: 'a.bin', data: new Uint8Array(100), uncompressedSize: 10_000 }]);
    await expectRefusal(() => unzipToFileSource(short, 'short.zip'), AdapterImportError, 'inflates to 100 bytes but declares 10000');
  });

  it('refuses a zip with too many entries before reading them', async () => {
    const files = Object.fromEntries(Array.from({ length: ZIP_LIMITS.maxEntries + 1 }, (_, i) => [`f${i}.txt`, new Uint8Array(0)]));
    await expectRefusal(() => unzipToFileSource(zipSync(files), 'many.zip'), AdapterImportError, 'lists 1001 entries, more than the 1000');
  });

  it('refuses entry names that would leave the folder, whatever their spelling', async () => {
    const cases: [string, string][] = [
      ['../evil.txt', 'climbs out of the folder with ".."'],
      ['my-adapter/../../evil.txt', 'climbs out'],
      ['my-adapter\\..\\..\\evil.txt', 'climbs out'],
      ['/etc/passwd', 'is an absolute path'],
      ['\\windows\\system32\\x.dll', 'is an absolute path'],
      ['C:\\Users\\x\\evil.txt', 'starts with a drive letter'],
      ['c:evil.txt', 'starts with a drive letter'],
      ['adapter\u0000.json', 'contains control characters'],
      ['./', 'is empty'],
    ];
    for (const [name, problem] of cases) {
      const zip = handZip([
        { name: 'adapter_config.json', data: text('{}') },
        { name, data: text('x') },
      ]);
      const refused = 'evil.zip is refused: entry name';
      await expectRefusal(() => unzipToFileSource(zip, 'evil.zip'), AdapterImportError, refused, JSON.stringify(name), problem);
    }
  });

  it('turns backslashes into folders (Windows tools write them) and drops "." segments', async () => {
    const zip = handZip([
      { name: 'my-adapter\\adapter_config.json', data: text('{"a":1}') },
      { name: './my-adapter//weights\\w.bin', data: bytes(9) },
    ]);
    const source = unzipToFileSource(zip, 'windows.zip');
    expect(new TextDecoder().decode(await source.read('adapter_config.json'))).toBe('{"a":1}');
    expect([...(await source.read('weights/w.bin'))]).toEqual([9]);
  });

  it('refuses two entries with the same path, encrypted entries and unknown compression', async () => {
    const twice = handZip([
      { name: 'a.json', data: text('1') },
      { name: './a.json', data: text('2') },
    ]);
    await expectRefusal(() => unzipToFileSource(twice, 'x.zip'), AdapterImportError, 'holds "a.json" more than once');
    const encrypted = handZip([{ name: 'a.json', data: text('1'), flags: 0x1 }]);
    await expectRefusal(() => unzipToFileSource(encrypted, 'x.zip'), AdapterImportError, 'entry "a.json" is encrypted');
    const bzip2 = handZip([{ name: 'a.json', rawData: garbage, method: 12, uncompressedSize: 10 }]);
    await expectRefusal(() => unzipToFileSource(bzip2, 'x.zip'), AdapterImportError, 'compression method 12');
    const lyingStored = handZip([{ name: 'a.bin', data: bytes(1, 2), method: 0, uncompressedSize: 5000 }]);
    await expectRefusal(() => unzipToFileSource(lyingStored, 'x.zip'), AdapterImportError, 'declares 2 stored but 5000 unpacked');
  });

  it('refuses data ranges and a directory that lie outside the file', async () => {
    const zip = handZip([{ name: 'a.bin', data: bytes(1, 2, 3), method: 0 }]);
    const pastEnd = zip.slice();
    const view = new DataView(pastEnd.buffer);
    const directory = view.getUint32(pastEnd.length - 6, true);
    view.setUint32(directory + 42, 1_000_000, true);
    await expectRefusal(() => unzipToFileSource(pastEnd, 'x.zip'), AdapterImportError, 'the local header of "a.bin" lies outside the file');
    const badDirectory = zip.slice();
    new DataView(badDirectory.buffer).setUint32(badDirectory.length - 6, 0xfffffff0, true);
    await expectRefusal(() => unzipToFileSource(badDirectory, 'x.zip'), AdapterImportError, 'the central directory lies outside the file');
  });
});

describe('unzipBlob', () => {
  it('refuses a file too large to be an adapter zip without reading it', async () => {
    const arrayBuffer = vi.fn();
    const huge = { size: 2 ** 40, arrayBuffer } as unknown as Blob;
    const refused = 'huge.zip is refused: it is 1048576 MiB';
    await expectRefusal(() => unzipBlob(huge, 'huge.zip'), AdapterImportError, refused, 'at most 1024 MiB unpacked');
    expect(arrayBuffer).not.toHaveBeenCalled();
  });

  it('reads a zip file', async () => {
    const source = await unzipBlob(new Blob([zipFiles({ 'a.txt': text('hi') }) as Uint8Array<ArrayBuffer>]), 'a.zip');
    expect(new TextDecoder().decode(await source.read('a.txt'))).toBe('hi');
  });
});

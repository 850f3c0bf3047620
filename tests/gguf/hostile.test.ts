import { describe, expect, it } from 'vitest';
import { encodeGguf, joinParts } from '../../src/gguf/encode';
import { GgufFormatError, type GgufProblem } from '../../src/gguf/errors';
import { readGgufHeader } from '../../src/gguf/reader';
import { gguf, GgufValueType } from '../../src/gguf/values';
import { ModelLoadError } from '../../src/model/errors';
import { randomArray } from '../helpers/numeric';
import { offsetAfter, recordingSource, sampleFile, setU32, setU64, tensorInfoFields } from './helpers';

/** Reads `bytes` and expects a GgufFormatError for `problem` (or one of several) whose message matches `text`; returns it. */
async function refused(bytes: Uint8Array, problem: GgufProblem | GgufProblem[], text: RegExp): Promise<GgufFormatError> {
  const source = recordingSource(bytes, 'hostile.gguf');
  const err = await readGgufHeader(source).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected the ${problem} refusal`).toBeInstanceOf(GgufFormatError);
  const e = err as GgufFormatError;
  expect(Array.isArray(problem) ? problem : [problem]).toContain(e.problem);
  expect(e.message).toMatch(text);
  expect(e.message).toContain('hostile.gguf is not a valid GGUF file');
  expect(e).toBeInstanceOf(ModelLoadError);
  return e;
}

const valid = sampleFile();
const T = GgufValueType;

describe('refuses damaged and hostile GGUF files', () => {
  it('truncated anywhere in the header: every prefix is refused, the message counting the bytes that are missing', async () => {
    const header = await readGgufHeader(recordingSource(valid));
    // A cut inside a string or array shows as a length that the remaining bytes cannot hold.
    const shortFile: GgufProblem[] = ['truncated', 'too-many-entries', 'string-length', 'array-count'];
    const seen = new Set<GgufProblem>();
    for (let n = 0; n < header.dataOffset; n += 3) {
      const e = await refused(valid.subarray(0, n), shortFile, /byte/);
      seen.add(e.problem);
      if (n < 4) expect(e.detail).toMatch(/the file ends at byte \d+, but the magic "GGUF" needs 4 bytes/);
    }
    expect([...seen].sort()).toEqual([...shortFile].sort());
  });

  it('tensor data cut off: the tensor that reaches past the end is named', async () => {
    await refused(
      valid.subarray(0, valid.length - 40),
      'tensor-past-end',
      /tensor "e\.bf16" \(32 bytes at data offset \d+\) ends past the end of the file/,
    );
    const f = tensorInfoFields(valid, 'a.f32');
    await refused(setU64(valid, f.offset, 1n << 40n), 'tensor-past-end', /tensor "a\.f32"/);
    await refused(setU64(valid, f.offset, 1n << 62n), 'tensor-past-end', /far past the end/);
  });

  it('string lengths and array counts larger than the file', async () => {
    // The first key's length field sits right after magic, version and counts.
    await refused(setU64(valid, 24, 1n << 50n), 'string-length', /claims 1125899906842624 bytes, but only \d+ bytes follow/);
    const strAt = offsetAfter(valid, 'test.string') + 4;
    await refused(setU64(valid, strAt, 1n << 33n), 'string-length', /the value of "test\.string" claims 8589934592 bytes/);
    const arrAt = offsetAfter(valid, 'test.arr.string') + 8;
    await refused(setU64(valid, arrAt, 1n << 40n), 'array-count', /"test\.arr\.string" claims 1099511627776 items of at least 8 bytes/);
    const numAt = offsetAfter(valid, 'test.arr.f32') + 8;
    await refused(setU64(valid, numAt, 2n ** 64n - 1n), 'array-count', /claims 18446744073709551615 items/);
  });

  it('strings and arrays that would fit a huge file but no real model are refused before allocating', async () => {
    // A 1 GiB string in a file that claims (through its own size) to have the bytes: the size cap stops it.
    let bytesRead = 0;
    /** `bytes` at the start of a 1 TiB file of zeros. */
    const huge = (bytes: Uint8Array) => ({
      name: 'huge.gguf',
      size: 2 ** 40,
      read: async (offset: number, length: number) => {
        bytesRead += length;
        const out = new Uint8Array(length);
        out.set(bytes.subarray(offset, offset + length));
        return out;
      },
    });
    const string = await readGgufHeader(huge(setU64(valid, offsetAfter(valid, 'test.string') + 4, 1n << 30n))).catch((err) => err);
    expect((string as GgufFormatError).problem).toBe('string-length');
    expect((string as GgufFormatError).detail).toMatch(/claims 1073741824 bytes, more than the 67108864 bytes any real GGUF string has/);
    const array = await readGgufHeader(huge(setU64(valid, offsetAfter(valid, 'test.arr.u8') + 8, 1n << 32n))).catch((err) => err);
    expect((array as GgufFormatError).problem).toBe('array-count');
    expect((array as GgufFormatError).detail).toMatch(
      /"test\.arr\.u8" claims 4294967296 items, more than the 16777216 any real GGUF array has/,
    );
    expect(bytesRead).toBeLessThanOrEqual(2 << 20);
  });

  it('more tensors or metadata entries than the file could hold', async () => {
    await refused(setU64(valid, 8, 1n << 40n), 'too-many-entries', /claims 1099511627776 tensors/);
    await refused(setU64(valid, 16, 2n ** 63n), 'too-many-entries', /claims 9223372036854775808 metadata entries/);
  });

  it('unknown ggml type ids, absurd dims and rows that are not whole blocks', async () => {
    const q = tensorInfoFields(valid, 'c.q8_0');
    await refused(setU32(valid, q.type, 99), 'unknown-type', /tensor "c\.q8_0" has ggml type id 99, which is unknown/);
    await refused(setU32(valid, q.type, 4), 'unknown-type', /type id 4/);
    await refused(setU64(valid, q.dim(1), 1n << 60n), 'dims', /tensor "c\.q8_0" has dimension 1 of 1152921504606846976.*overflows/);
    await refused(setU32(valid, q.nDims, 7), 'dims', /tensor "c\.q8_0" has 7 dimensions; ggml tensors have 1 to 4/);
    await refused(setU32(valid, q.nDims, 0), 'dims', /has 0 dimensions/);
    await refused(setU64(valid, q.dim(0), 48n), 'row-size', /tensor "c\.q8_0" is Q8_0 \(blocks of 32 values\) but its rows have 48 values/);
  });

  it('misaligned and overlapping tensor data', async () => {
    const b = tensorInfoFields(valid, 'b.f16');
    await refused(
      setU64(valid, b.offset, 72n),
      'misaligned',
      /tensor "b\.f16" starts at data offset 72, not a multiple of the alignment 64/,
    );
    await refused(setU64(valid, b.offset, 0n), 'overlap', /the data of tensors "a\.f32" .* and "b\.f16" \(from 0\) overlap/);
  });

  it('not GGUF, GGUF v1, big-endian files and unknown versions', async () => {
    const json = new TextEncoder().encode('{"not": "a gguf file at all, but long enough"}');
    await refused(json, 'not-gguf', /starts with bytes \[123, 34, 110, 111\], not the magic "GGUF"/);
    await refused(setU32(valid, 4, 1), 'version', /GGUF version 1/);
    await refused(setU32(valid, 4, 0x03000000), 'big-endian', /big-endian/);
    await refused(setU32(valid, 4, 4), 'version', /GGUF version 4; webtune reads versions 2 and 3/);
  });

  it('bad alignment, duplicate keys and tensor names, unknown value types, empty or long tensor names', async () => {
    const file = (meta: [string, ReturnType<typeof gguf.u32>][], names = ['x', 'y']) =>
      joinParts(
        encodeGguf(
          meta,
          names.map((name) => ({ name, dims: [4], type: 'F32' as const, data: new Uint8Array(16) })),
        ),
      );
    const aligned = file([['general.alignment', gguf.u32(32)]]);
    const alignmentAt = offsetAfter(aligned, 'general.alignment') + 4;
    await refused(setU32(aligned, alignmentAt, 48), 'alignment', /general\.alignment is 48, not a power of 2/);
    await refused(setU32(aligned, alignmentAt, 0), 'alignment', /is 0/);
    await refused(file([['general.alignment', gguf.i32(32)]]), 'alignment', /general\.alignment is int32, but GGUF requires a uint32/);
    await refused(
      file([
        ['a', gguf.u32(1)],
        ['a', gguf.u32(2)],
      ]),
      'duplicate',
      /the metadata key "a" appears twice/,
    );
    await refused(file([['', gguf.u32(1)]]), 'duplicate', /empty key/);
    await refused(file([], ['x', 'x']), 'duplicate', /the tensor name "x" appears twice/);
    await refused(file([], ['x', '']), 'tensor-name', /tensor 1 has a 0-byte name/);
    await refused(file([], ['x', 'n'.repeat(64)]), 'tensor-name', /64-byte name; GGUF tensor names have 1 to 63 bytes/);
    const typed = file([['k', gguf.u32(1)]]);
    await refused(setU32(typed, offsetAfter(typed, 'k'), 13), 'value-type', /the value of "k" has value type 13/);
    const nested = file([['k', { type: T.ARRAY, value: { itemType: T.UINT8, items: new Uint8Array(2) } }]]);
    await refused(setU32(nested, offsetAfter(nested, 'k') + 4, T.ARRAY), 'value-type', /array of value type 9/);
  });

  it('random corruption never escapes as anything but a GgufFormatError, and never reads past the end', async () => {
    const header = await readGgufHeader(recordingSource(valid));
    const u = randomArray(3 * 400, 77, 0, 1);
    let refusedCount = 0;
    for (let trial = 0; trial < 400; trial++) {
      const bytes = valid.slice();
      // Flip 1-3 bytes inside the header, where every length and count lives.
      for (let k = 0; k < 1 + (trial % 3); k++) bytes[Math.floor(u[3 * trial + k] * header.dataOffset)] ^= 1 + (trial % 255);
      try {
        await readGgufHeader(recordingSource(bytes));
      } catch (err) {
        if (!(err instanceof GgufFormatError)) throw err;
        refusedCount++;
      }
    }
    expect(refusedCount).toBeGreaterThan(100);
  });
});

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFormatError, UnsupportedModelError } from '../../src/model/errors';
import type { FileSource } from '../../src/model/file-source';
import {
  MAX_HEADER_BYTES,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/model/safetensors';
import { GOLDEN_DIR, rawSafetensors, u16Bytes } from './helpers';

const FILE = 'weights-under-test.safetensors';

function expectFormatError(bytes: Uint8Array, problem: RegExp): void {
  let error: unknown;
  try {
    readSafetensors(bytes, FILE);
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(SafetensorsFormatError);
  const e = error as SafetensorsFormatError;
  expect(e.file).toBe(FILE);
  expect(e.message).toContain(FILE);
  expect(e.message).toMatch(problem);
}

const f32 = (n: number) => ({ dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] });

describe('writeSafetensors / readSafetensors', () => {
  it('round-trips tensors and metadata, sorted names, padded header', () => {
    const tensors = [
      { name: 'b.weight', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 1e-30, -0, 7]) },
      { name: '10', shape: [1], data: new Float32Array([42]) },
      { name: 'a.empty', shape: [0, 4], data: new Float32Array(0) },
      { name: 'a.scalar', shape: [], data: new Float32Array([Math.PI]) },
    ];
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(headerText.startsWith('{"__metadata__":{"format":"pt"},"10":')).toBe(true);
    expect(headerText.indexOf('"a.empty"')).toBeLessThan(headerText.indexOf('"a.scalar"'));
    expect(headerText.indexOf('"a.scalar"')).toBeLessThan(headerText.indexOf('"b.weight"'));

    const { tensors: back, metadata } = readSafetensors(bytes, FILE);
    expect(metadata).toEqual({ format: 'pt' });
    expect(back.size).toBe(4);
    for (const t of tensors) {
      const got = back.get(t.name)!;
      expect(got.dtype).toBe('F32');
      expect(got.shape).toEqual(t.shape);
      expect(Array.from(got.data)).toEqual(Array.from(t.data));
    }
    expect(Object.is(back.get('b.weight')!.data[4], -0)).toBe(true);
  });

  it('writes the same bytes as the Python library', async () => {
    const original = new Uint8Array(await readFile(path.join(GOLDEN_DIR, 'grads.safetensors')));
    const { tensors } = readSafetensors(original, 'grads.safetensors');
    const rewritten = writeSafetensors([...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.data })));
    expect(Buffer.from(rewritten).equals(Buffer.from(original))).toBe(true);
  });

  it('refuses tensors whose data does not match the shape', () => {
    expect(() => writeSafetensors([{ name: 'x', shape: [2, 2], data: new Float32Array(3) }])).toThrow(/x.*shape \[2, 2\]/);
    expect(() =>
      writeSafetensors([
        { name: 'x', shape: [1], data: new Float32Array(1) },
        { name: 'x', shape: [1], data: new Float32Array(1) },
      ]),
    ).toThrow(/more than once/);
  });
});

describe('half-precision conversion', () => {
  it('converts F16 exactly, including subnormals, infinities and signed zero', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x8000, -0],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    const n = cases.length + 1;
    const bytes = rawSafetensors(
      { h: { dtype: 'F16', shape: [n], data_offsets: [0, 2 * n] } },
      u16Bytes([...cases.map(([bits]) => bits), 0x7e00]),
    );
    const data = readSafetensors(bytes, FILE).tensors.get('h')!.data;
    for (const [i, [bits, value]] of cases.entries()) expect(Object.is(data[i], value), `0x${bits.toString(16)}`).toBe(true);
    expect(Number.isNaN(data[n - 1])).toBe(true);
  });

  it('converts BF16 exactly', () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc040, -3],
      [0x3eab, 0.333984375],
      [0x7f7f, 3.3895313892515355e38],
      [0x0001, 9.183549615799121e-41],
      [0xff80, -Infinity],
      [0x8000, -0],
    ];
    // An odd header length puts the data at an odd byte offset: conversion must not need alignment.
    const header = JSON.stringify({ b: { dtype: 'BF16', shape: [cases.length], data_offsets: [0, 2 * cases.length] } });
    const bytes = rawSafetensors(header.length % 2 ? header : `${header} `, u16Bytes(cases.map(([bits]) => bits)));
    const data = readSafetensors(bytes, FILE).tensors.get('b')!.data;
    for (const [i, [bits, value]] of cases.entries()) expect(Object.is(data[i], value), `0x${bits.toString(16)}`).toBe(true);
  });

  it('parses integer tensors but refuses to convert them to weights', () => {
    const bytes = rawSafetensors({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, 16);
    expect(parseSafetensorsHeader(bytes, bytes.length, FILE).tensors.get('ids')!.dtype).toBe('I64');
    expect(() => readSafetensors(bytes, FILE)).toThrow(UnsupportedModelError);
    expect(() => readSafetensors(bytes, FILE)).toThrow(/ids.*I64/);
  });
});

describe('safetensors validation', () => {
  const valid = writeSafetensors([
    { name: 'a', shape: [4], data: new Float32Array(4) },
    { name: 'b', shape: [2, 2], data: new Float32Array(4) },
  ]);

  it('rejects a truncated file', () => {
    expectFormatError(valid.subarray(0, valid.length - 4), /past the end.*truncated/);
    expectFormatError(valid.subarray(0, 5), /too short.*truncated/);
  });

  it('rejects a header length past the end of the file', () => {
    const bytes = valid.slice();
    new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length), true);
    expectFormatError(bytes, /header length \d+ reaches past the end/);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 62n, true);
    expectFormatError(bytes, /header length \d+ is larger than/);
  });

  it('rejects data offsets past the end', () => {
    expectFormatError(
      rawSafetensors({ a: { dtype: 'F32', shape: [4], data_offsets: [16, 32] }, b: f32(4) }, 16),
      /tensor "a" data_offsets \[16, 32\] reach past the end/,
    );
  });

  it('rejects gaps and overlaps between tensors', () => {
    expectFormatError(rawSafetensors({ a: f32(2), b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } }, 20), /gap/);
    expectFormatError(
      rawSafetensors({ a: f32(2), b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
      /tensor "b".*overlap tensor "a"/,
    );
    expectFormatError(rawSafetensors({ a: f32(2) }, 12), /4 bytes after the last tensor/);
  });

  it('rejects a byte count that does not match shape and dtype', () => {
    expectFormatError(
      rawSafetensors({ a: { dtype: 'F16', shape: [3, 2], data_offsets: [0, 24] } }, 24),
      /tensor "a" of shape \[3, 2\] and dtype F16 needs 12 bytes but .* span 24 bytes/,
    );
  });

  it('rejects duplicate tensor names', () => {
    const header = `{"a":${JSON.stringify(f32(1))},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":${JSON.stringify(f32(1))}}`;
    expectFormatError(rawSafetensors(header, 8), /"a" more than once/);
    // The same name spelled with an escape is still a duplicate.
    const escaped = `{"ab":${JSON.stringify(f32(1))},"a\\u0062":${JSON.stringify(f32(1))}}`;
    expectFormatError(rawSafetensors(escaped, 4), /"ab" more than once/);
  });

  it('rejects a header that is not JSON or not an object', () => {
    expectFormatError(rawSafetensors('{"a": {"dtype": "F32", '), /not valid JSON/);
    expectFormatError(rawSafetensors('[1, 2]'), /not a JSON object/);
    expectFormatError(rawSafetensors(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
  });

  it('rejects unknown dtypes, bad shapes and bad metadata', () => {
    expectFormatError(rawSafetensors({ a: { dtype: 'Q4_K', shape: [1], data_offsets: [0, 1] } }, 1), /unknown dtype "Q4_K"/);
    expectFormatError(rawSafetensors({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }), /non-negative integers/);
    expectFormatError(rawSafetensors({ __metadata__: { format: 1 } }), /"__metadata__" value for "format"/);
  });

  it('validates a file from its header alone, without reading tensor data', async () => {
    const big = writeSafetensors([{ name: 'w', shape: [1024, 64], data: new Float32Array(1024 * 64) }]);
    const reads: [number, number][] = [];
    const source: FileSource = {
      description: 'memory',
      has: async () => true,
      size: async () => big.length,
      read: async (_p, begin = 0, end = big.length) => {
        reads.push([begin, end]);
        return big.slice(begin, end);
      },
    };
    const header = await readSafetensorsHeader(source, 'big.safetensors');
    expect(header.tensors.get('w')).toMatchObject({ shape: [1024, 64], begin: 0, end: 1024 * 64 * 4 });
    expect(Math.max(...reads.map(([, end]) => end))).toBe(header.dataStart);
  });
});

/** A file of `size` bytes whose first bytes are `head` (the rest is never there): records every range read. */
function claimedFile(head: Uint8Array, size: number): { source: FileSource; reads: [number, number][] } {
  const reads: [number, number][] = [];
  const source: FileSource = {
    description: 'memory',
    has: async () => true,
    size: async () => size,
    read: async (_p, begin = 0, end = size) => {
      reads.push([begin, end]);
      if (end > head.length) throw new Error(`read up to ${end}, past the ${head.length} bytes this test holds`);
      return head.slice(begin, end);
    },
  };
  return { source, reads };
}

const lengthPrefix = (n: bigint) => {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, n, true);
  return bytes;
};

describe('hostile safetensors headers are refused before anything is allocated', () => {
  it('a header length of 2^60 or 2^64 - 1, reading only the first 8 bytes', async () => {
    for (const n of [2n ** 60n, 2n ** 64n - 1n, BigInt(MAX_HEADER_BYTES) + 1n]) {
      const { source, reads } = claimedFile(lengthPrefix(n), 2 ** 61);
      await expect(readSafetensorsHeader(source, 'huge.safetensors')).rejects.toThrow(
        new RegExp(`huge.safetensors is not a valid safetensors file: the header length ${n} is larger than 16777216 bytes`),
      );
      expect(reads).toEqual([[0, 8]]);
    }
  });

  it('a 100 MB header in a file large enough to hold it, reading only the first 8 bytes', async () => {
    const { source, reads } = claimedFile(lengthPrefix(100_000_000n), 200_000_000);
    await expect(readSafetensorsHeader(source, 'big-header.safetensors')).rejects.toThrow(SafetensorsFormatError);
    expect(reads).toEqual([[0, 8]]);
  });

  it('a header length past the end of the file, reading only the first 8 bytes', async () => {
    const { source, reads } = claimedFile(lengthPrefix(4096n), 1000);
    const problem = /header length 4096 reaches past the end of the file \(1000 bytes\)/;
    await expect(readSafetensorsHeader(source, 'short.safetensors')).rejects.toThrow(problem);
    expect(reads).toEqual([[0, 8]]);
  });

  it('offsets of 2^60, negative, fractional, reversed or malformed', () => {
    const offsets: [string, RegExp][] = [
      ['[0, 1152921504606846976]', /data_offsets \[0,1152921504606847000\], not integers \[begin, end\]/],
      ['[1152921504606846976, 1152921504606846980]', /not integers \[begin, end\] with 0 <= begin <= end < 2\^53/],
      ['[-4, 0]', /data_offsets \[-4,0\], not integers/],
      ['[0, 4.5]', /data_offsets \[0,4.5\], not integers/],
      ['[8, 4]', /data_offsets \[8,4\], not integers/],
      ['[0, 4, 8]', /data_offsets \[0,4,8\]/],
      ['"0-4"', /data_offsets "0-4"/],
      ['[0, "4"]', /data_offsets \[0,"4"\]/],
      ['[0, 1e400]', /data_offsets \[0,null\]/],
    ];
    for (const [text, problem] of offsets) {
      expectFormatError(rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":${text}}}`, 4), problem);
    }
  });

  it('offsets that are safe integers but reach far past the file', () => {
    const header = { a: { dtype: 'F32', shape: [2 ** 25, 2 ** 25], data_offsets: [0, 2 ** 52] } };
    expectFormatError(rawSafetensors(header, 16), /tensor "a" data_offsets \[0, 4503599627370496\] reach past the end .* 16 bytes/);
  });

  it('tensors that overlap in any arrangement', () => {
    const t = (begin: number, end: number) => ({ dtype: 'U8', shape: [end - begin], data_offsets: [begin, end] });
    expectFormatError(rawSafetensors({ a: t(0, 4), b: t(0, 4) }, 4), /overlap tensor "a"/);
    expectFormatError(rawSafetensors({ a: t(0, 8), b: t(2, 6) }, 8), /"b" data_offsets \[2, 6\] overlap tensor "a", which ends at 8/);
    expectFormatError(rawSafetensors({ a: t(0, 6), b: t(4, 8) }, 8), /tensor "b" .* overlap tensor "a"/);
  });

  it('shapes whose element count overflows, or that disagree with the byte range', () => {
    expectFormatError(
      rawSafetensors({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, 4),
      /tensor "a" of shape \[1099511627776, 1099511627776\] and dtype F32 needs too many bytes/,
    );
    expectFormatError(
      rawSafetensors({ a: { dtype: 'F32', shape: [2 ** 53], data_offsets: [0, 4] } }, 4),
      /shape \[9007199254740992\], not/,
    );
    expectFormatError(rawSafetensors({ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 10] } }, 10), /shape \[2.5\], not a list/);
    expectFormatError(rawSafetensors({ a: { dtype: 'F32', shape: '[4]', data_offsets: [0, 16] } }, 16), /shape "\[4\]", not a list/);
    expectFormatError(rawSafetensors({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 8] } }, 8), /needs 6 bytes but .* span 8 bytes/);
    expectFormatError(rawSafetensors({ a: { dtype: 'F32', shape: [], data_offsets: [0, 0] } }), /needs 4 bytes but .* span 0 bytes/);
  });

  it('values too long or too deep to quote, with a short message', () => {
    const longDtype = rawSafetensors({ a: { dtype: 'F'.repeat(1_000_000), shape: [1], data_offsets: [0, 4] } }, 4);
    const deep = rawSafetensors(`{"a":{"dtype":"F32","shape":${'['.repeat(100_000)}${']'.repeat(100_000)},"data_offsets":[0,4]}}`, 4);
    for (const [bytes, problem] of [
      [longDtype, /unknown dtype "FFFF.*… \(1000002 characters\)/],
      [deep, /shape \(a value too deeply nested to show\)/],
    ] as const) {
      let message = '';
      try {
        readSafetensors(bytes, FILE);
      } catch (err) {
        expect(err).toBeInstanceOf(SafetensorsFormatError);
        message = (err as Error).message;
      }
      expect(message).toMatch(problem);
      expect(message.length).toBeLessThan(500);
    }
  });
});

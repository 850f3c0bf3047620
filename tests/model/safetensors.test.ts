import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFormatError, UnsupportedModelError } from '../../src/model/errors';
import type { FileSource } from '../../src/model/file-source';
import {
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
    cases.forEach(([bits, value], i) => expect(Object.is(data[i], value), `0x${bits.toString(16)}`).toBe(true));
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
    cases.forEach(([bits, value], i) => expect(Object.is(data[i], value), `0x${bits.toString(16)}`).toBe(true));
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
    expectFormatError(
      rawSafetensors({ a: f32(2), b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } }, 20),
      /gap/,
    );
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

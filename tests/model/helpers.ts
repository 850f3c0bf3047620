import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Shared test data lives next to the repository, never inside it. */
export const SHARED = path.resolve(__dirname, '../../../shared');
export const STORIES_DIR = path.join(SHARED, 'models/stories260K');
export const GOLDEN_DIR = path.join(SHARED, 'golden/stories260K-qkv-r4');

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `webtune-${prefix}-`));
}

/** A safetensors file from a raw header text (so tests can write duplicate keys or broken JSON) and data bytes. */
export function rawSafetensors(header: string | Uint8Array | object, data: Uint8Array | number = 0): Uint8Array {
  const json =
    header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(bytes, 8 + json.length);
  return out;
}

export function u16Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(values).buffer);
}

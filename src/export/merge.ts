/**
 * Merging an adapter into its base model: W' = W + scaling * B A for every adapted projection,
 * written as a Hugging Face model folder that any tool can load without PEFT. One tensor is read
 * at a time and one shard held at a time, so a model larger than memory allows for a full copy
 * still merges.
 */
import { loraScaling } from '../lora/config';
import type { FileSource } from '../model/file-source';
import {
  CONVERTIBLE_DTYPES,
  DTYPE_BYTES,
  readSafetensorsHeader,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  tensorToFloat32,
} from '../model/safetensors';
import { f32BitsToBf16, f32BitsToF16 } from '../model/weight-format';
import { openModel } from '../model/weights';
import { checkAdapterTensors, type AdapterTensors } from './adapter';
import { AdapterExportError } from './errors';

export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** Calls `emit` with each merged row in float64, before any rounding. */
function mergeRows(
  weight: Float32Array,
  A: Float32Array,
  B: Float32Array,
  out: number,
  inF: number,
  r: number,
  scaling: number,
  emit: (row: number, values: Float64Array) => void,
): void {
  if (weight.length !== out * inF || A.length !== r * inF || B.length !== out * r) {
    throw new RangeError(
      `mergeAdapterIntoWeights: sizes ${weight.length}, ${A.length}, ${B.length} ` +
        `do not match W [${out}, ${inF}], A [${r}, ${inF}], B [${out}, ${r}]`,
    );
  }
  const delta = new Float64Array(inF);
  const row = new Float64Array(inF);
  for (let o = 0; o < out; o++) {
    delta.fill(0);
    for (let k = 0; k < r; k++) {
      const b = B[o * r + k];
      const aRow = k * inF;
      for (let i = 0; i < inF; i++) delta[i] += b * A[aRow + i];
    }
    const wRow = o * inF;
    for (let i = 0; i < inF; i++) row[i] = weight[wRow + i] + scaling * delta[i];
    emit(o, row);
  }
}

/** W + scaling * B A for W [out, in], A [r, in], B [out, r], accumulated in float64 and rounded once to f32. */
export function mergeAdapterIntoWeights(
  weight: Float32Array,
  A: Float32Array,
  B: Float32Array,
  out: number,
  inF: number,
  r: number,
  scaling: number,
): Float32Array {
  const merged = new Float32Array(out * inF);
  mergeRows(weight, A, B, out, inF, r, scaling, (o, values) => merged.set(values, o * inF));
  return merged;
}

const scratch = new DataView(new ArrayBuffer(4));

/**
 * f32 bits of `x` rounded to odd: exact values stay, inexact ones get the neighbour with an odd
 * last bit. Rounding that result to a format at least two bits narrower (f16, bf16) then gives
 * the correctly rounded value of `x` itself, which rounding to nearest f32 first would not
 * (a float64 just above an f16 tie can land exactly on the tie).
 */
function f32BitsRoundedToOdd(x: number): number {
  scratch.setFloat32(0, x, true);
  let bits = scratch.getUint32(0, true);
  const f = scratch.getFloat32(0, true);
  if (f !== x && !Number.isNaN(x) && (bits & 1) === 0) bits += Math.abs(f) > Math.abs(x) ? -1 : 1;
  return bits >>> 0;
}

/** Little-endian bytes of `values` in `dtype`, each rounded to nearest, ties to even. */
export function encodeFloats(values: ArrayLike<number>, dtype: FloatDtype): Uint8Array {
  const bytes = new Uint8Array(values.length * DTYPE_BYTES[dtype]);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (dtype === 'F32') view.setFloat32(4 * i, x, true);
    else if (dtype === 'BF16') view.setUint16(2 * i, f32BitsToBf16(f32BitsRoundedToOdd(x)), true);
    else view.setUint16(2 * i, f32BitsToF16(f32BitsRoundedToOdd(x)), true);
  }
  return bytes;
}

const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';
/** Shards stay below 2^31 bytes, the largest ArrayBuffer some browsers allocate. */
const DEFAULT_MAX_SHARD_BYTES = 2_000_000_000;
const OPTIONAL_FILES = [
  'tokenizer_config.json',
  'generation_config.json',
  'special_tokens_map.json',
  'chat_template.jinja',
  'tokenizer.model',
];

interface SourceTensor {
  header: SafetensorsHeader;
  info: SafetensorsTensorInfo;
  dtype: string;
  bytes: number;
}

async function sourceHeaders(source: FileSource): Promise<SafetensorsHeader[]> {
  if (await source.has(SINGLE_FILE)) return [await readSafetensorsHeader(source, SINGLE_FILE)];
  const index = JSON.parse(new TextDecoder().decode(await source.read(INDEX_FILE))) as { weight_map: Record<string, string> };
  const files = [...new Set(Object.values(index.weight_map))].sort();
  return Promise.all(files.map((file) => readSafetensorsHeader(source, file)));
}

function safetensorsHeaderBytes(tensors: { name: string; dtype: string; shape: number[]; bytes: number }[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes] };
    offset += t.bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const length = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + length).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(length), true);
  out.set(json, 8);
  return out;
}

const shardName = (i: number, n: number) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;

/**
 * The merged model as the files of a Hugging Face folder: the weights (same tensor names, each in
 * its original dtype or all in F32; sharded with an index above `maxShardBytes`), config.json and
 * the tokenizer and generation files the base folder has.
 */
export async function* mergedModelFiles(
  source: FileSource,
  adapter: AdapterTensors,
  opts: { dtype: 'same' | 'f32'; maxShardBytes?: number },
): AsyncIterable<{ path: string; bytes: Uint8Array }> {
  const { config: model } = await openModel(source);
  checkAdapterTensors(adapter.tensors, adapter.config, model, (problem) => {
    throw new AdapterExportError(`Cannot merge the adapter into ${source.description}: ${problem}.`);
  });
  const scaling = loraScaling(adapter.config);
  const adapted = new Map<string, { A: Float32Array; B: Float32Array }>();
  for (const [name, tensor] of adapter.tensors) {
    if (!name.endsWith('.lora_A.weight')) continue;
    const base = `${name.slice('base_model.model.'.length, -'.lora_A.weight'.length)}.weight`;
    adapted.set(base, { A: tensor.data, B: adapter.tensors.get(name.replace('.lora_A.', '.lora_B.'))!.data });
  }

  const tensors: SourceTensor[] = [];
  for (const header of await sourceHeaders(source)) {
    for (const info of header.tensors.values()) {
      const dtype = opts.dtype === 'f32' && CONVERTIBLE_DTYPES.includes(info.dtype) ? 'F32' : info.dtype;
      const numel = info.shape.reduce((a, b) => a * b, 1);
      tensors.push({ header, info, dtype, bytes: numel * DTYPE_BYTES[dtype] });
    }
  }
  const maxShardBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const shards: SourceTensor[][] = [[]];
  let shardBytes = 0;
  for (const t of tensors) {
    if (shardBytes > 0 && shardBytes + t.bytes > maxShardBytes) {
      shards.push([]);
      shardBytes = 0;
    }
    shards[shards.length - 1].push(t);
    shardBytes += t.bytes;
  }

  const configJson = await source.read('config.json');
  if (opts.dtype === 'f32') {
    const cfg = JSON.parse(new TextDecoder().decode(configJson)) as Record<string, unknown>;
    cfg.torch_dtype = 'float32';
    // Newer transformers versions write "dtype" instead of "torch_dtype".
    if ('dtype' in cfg) cfg.dtype = 'float32';
    yield { path: 'config.json', bytes: new TextEncoder().encode(`${JSON.stringify(cfg, null, 2)}\n`) };
  } else {
    yield { path: 'config.json', bytes: configJson };
  }
  yield { path: 'tokenizer.json', bytes: await source.read('tokenizer.json') };
  for (const file of OPTIONAL_FILES) {
    if (await source.has(file)) yield { path: file, bytes: await source.read(file) };
  }

  const weightMap: Record<string, string> = {};
  for (const [i, shard] of shards.entries()) {
    const path = shards.length === 1 ? SINGLE_FILE : shardName(i, shards.length);
    const header = safetensorsHeaderBytes(shard.map((t) => ({ name: t.info.name, dtype: t.dtype, shape: t.info.shape, bytes: t.bytes })));
    const bytes = new Uint8Array(header.length + shard.reduce((sum, t) => sum + t.bytes, 0));
    bytes.set(header);
    let at = header.length;
    for (const { header: from, info, dtype, bytes: size } of shard) {
      const raw = await source.read(from.file, from.dataStart + info.begin, from.dataStart + info.end);
      const lora = adapted.get(info.name);
      if (lora) {
        const [out, inF] = info.shape;
        const weight = tensorToFloat32(raw, info.dtype, from.file, info.name);
        const rowBytes = inF * DTYPE_BYTES[dtype];
        mergeRows(weight, lora.A, lora.B, out, inF, adapter.config.r, scaling, (o, values) =>
          bytes.set(encodeFloats(values, dtype as FloatDtype), at + o * rowBytes),
        );
      } else if (dtype === info.dtype) {
        bytes.set(raw, at);
      } else {
        const f32 = tensorToFloat32(raw, info.dtype, from.file, info.name);
        bytes.set(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength), at);
      }
      at += size;
      weightMap[info.name] = path;
    }
    yield { path, bytes };
  }
  if (shards.length > 1) {
    const totalSize = tensors.reduce((sum, t) => sum + t.bytes, 0);
    const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const index = { metadata: { total_size: totalSize }, weight_map: sorted };
    yield { path: INDEX_FILE, bytes: new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`) };
  }
}

import { gpuBlockFormat } from '../gguf/block-formats';
import { ggufTensorName } from '../gguf/names';
import { toHalfBits } from '../gguf/quants/half';
import { llamaCppMix } from '../gguf/quant-mix';
import type { ModelConfig } from '../model/config';
import { BLOCK_LAYOUTS, type BlockFormat } from '../model/weight-format';
import { expectedTensorShapes, type ModelWeightsSource } from '../model/weights';
import { seededUniform } from '../util/random';

/** transformers' default `initializer_range`: the std of every random-init matrix. */
const INIT_STD = 0.02;

/**
 * Random weights of the right shapes for `config`, made tensor by tensor when the loader asks (a
 * 135M-parameter model never sits in JS memory twice). Norm weights are 1, as transformers
 * initialises them; matrices are uniform with std 0.02, the same scale as transformers' random
 * init, so activations stay in the range real models produce. The same seed gives the same model.
 * They are F32, so `--weights bf16` or `f16` measures the engine storing an F32 checkpoint in 16 bits.
 */
export function randomWeightsSource(config: ModelConfig, seed: number): ModelWeightsSource {
  const shapes = expectedTensorShapes(config);
  const names = [...shapes.keys()];
  /** Rows [start, end) of the tensor's first dimension; the stream is generated from row 0 on. */
  const values = (name: string, expectedShape: number[], rows?: [number, number]): Float32Array => {
    const shape = shapes.get(name);
    if (!shape || shape.join() !== expectedShape.join()) throw new Error(`random weights: no tensor ${name} of shape [${expectedShape}]`);
    const width = shape.slice(1).reduce((a, b) => a * b, 1);
    const [start, end] = rows ?? [0, shape[0]];
    const data = new Float32Array(end * width);
    if (name.endsWith('norm.weight')) data.fill(1);
    else {
      const uniform = seededUniform(seed * 7919 + names.indexOf(name));
      const bound = INIT_STD * Math.sqrt(3);
      for (let i = 0; i < data.length; i++) data[i] = (2 * uniform() - 1) * bound;
    }
    return data.subarray(start * width);
  };
  return {
    config,
    files: ['random'],
    async tensor(name, expectedShape) {
      return values(name, expectedShape);
    },
    dtype: () => 'F32',
    async raw(name, expectedShape, rows) {
      const data = values(name, expectedShape, rows);
      return { dtype: 'F32', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), file: 'random' };
    },
  };
}

/** Byte offsets of each block format's f16 scales inside a block (ggml's layouts). */
const HALF_SCALES: Record<BlockFormat, number[]> = {
  q8_0: [0],
  q4_0: [0],
  q5_0: [0],
  q5_1: [0, 2],
  q4_k: [0, 2],
  q5_k: [0, 2],
  q6_k: [208],
};

/**
 * `elements` values (whole blocks) of `format` as random blocks: every quant and sub-block scale
 * byte random, the f16 scales random finite values in ±`scale` (random bytes there could be
 * infinities or NaN). The same seed gives the same blocks.
 */
export function randomBlockBytes(format: BlockFormat, elements: number, seed: number, scale = 0.05): Uint8Array {
  const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
  const blocks = elements / blockSize;
  if (!Number.isInteger(blocks)) throw new RangeError(`${elements} values are not whole ${format} blocks`);
  const uniform = seededUniform(seed);
  const bytes = new Uint8Array(blocks * blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(uniform() * 256);
  const fields = HALF_SCALES[format];
  const halves = toHalfBits(Float32Array.from({ length: blocks * fields.length }, () => (2 * uniform() - 1) * scale));
  for (let b = 0; b < blocks; b++) {
    for (const [i, at] of fields.entries()) {
      const bits = halves[b * fields.length + i];
      bytes[b * blockBytes + at] = bits & 0xff;
      bytes[b * blockBytes + at + 1] = bits >> 8;
    }
  }
  return bytes;
}

/**
 * Random weights as a GGUF of llama-quantize's Q4_K_M or Q5_K_M would hold them
 * (src/gguf/quant-mix.ts): each matrix whose type has a GPU decoder is random blocks of it (f16 scales
 * within ±1e-4, so values are of the init's order), kept on the GPU under precision 'auto';
 * the rest (F16 fallbacks, norms) are randomWeightsSource's F32 values.
 */
export function randomQuantizedSource(config: ModelConfig, seed: number, mix: 'Q4_K_M' | 'Q5_K_M'): ModelWeightsSource {
  const floats = randomWeightsSource(config, seed);
  const shapes = expectedTensorShapes(config);
  const typeFor = llamaCppMix(mix, config);
  const blockFormat = (name: string) => {
    const shape = shapes.get(name);
    const gguf = ggufTensorName(name);
    return shape && shape.length === 2 && gguf ? gpuBlockFormat(typeFor(gguf, shape)) : null;
  };
  const names = [...shapes.keys()];
  return {
    ...floats,
    blockFormat,
    async blocks(name, expectedShape, rows) {
      const format = blockFormat(name);
      if (!format) throw new Error(`random weights: ${name} has no block format`);
      const [start, end] = rows ?? [0, expectedShape[0]];
      const cols = expectedShape[1];
      const all = randomBlockBytes(format, end * cols, seed * 7919 + names.indexOf(name), 1e-4);
      const rowBytes = (cols / BLOCK_LAYOUTS[format].blockSize) * BLOCK_LAYOUTS[format].blockBytes;
      return all.subarray(start * rowBytes);
    },
  };
}

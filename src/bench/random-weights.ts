import type { ModelConfig } from '../model/config';
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

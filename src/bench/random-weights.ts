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
 */
export function randomWeightsSource(config: ModelConfig, seed: number): ModelWeightsSource {
  const shapes = expectedTensorShapes(config);
  const names = [...shapes.keys()];
  return {
    config,
    files: ['random'],
    async tensor(name: string, expectedShape: number[]) {
      const shape = shapes.get(name);
      if (!shape || shape.join() !== expectedShape.join()) throw new Error(`random weights: no tensor ${name} of shape [${expectedShape}]`);
      const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (name.endsWith('norm.weight')) return data.fill(1);
      const uniform = seededUniform(seed * 7919 + names.indexOf(name));
      const bound = INIT_STD * Math.sqrt(3);
      for (let i = 0; i < data.length; i++) data[i] = (2 * uniform() - 1) * bound;
      return data;
    },
  };
}

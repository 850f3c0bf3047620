/**
 * The host-side adapter every import and export works on: the LoRA settings plus A and B of each
 * adapted projection under their PEFT names, so PEFT files round-trip without renaming.
 */
import { LORA_TARGETS, type LoraConfig, type LoraTarget } from '../lora/config';
import { peftTensorName, projectionShape } from '../lora/layout';
import type { ModelConfig } from '../model/config';

export interface AdapterTensor {
  shape: number[];
  data: Float32Array;
}

export interface AdapterTensors {
  config: LoraConfig;
  /** PEFT names (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`): A [r, in], B [out, r]. */
  tensors: Map<string, AdapterTensor>;
}

export interface PeftTensorKey {
  layer: number;
  target: LoraTarget;
  matrix: 'A' | 'B';
}

const PEFT_NAME = /^base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$/;

/** The module a PEFT tensor name belongs to, or null for any name PEFT would not write for our targets. */
export function parsePeftName(name: string): PeftTensorKey | null {
  const m = PEFT_NAME.exec(name);
  if (!m || !(LORA_TARGETS as readonly string[]).includes(m[2])) return null;
  const key: PeftTensorKey = { layer: Number(m[1]), target: m[2] as LoraTarget, matrix: m[3] as 'A' | 'B' };
  // Rejects "layers.01" and a projection under the wrong block (mlp.q_proj), which no model has.
  return peftTensorName(key, key.matrix) === name ? key : null;
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * Checks adapter tensor names and shapes against the LoRA settings and, when given, the model:
 * every name is a PEFT name of a listed target, A is [r, in] and B [out, r] for that projection,
 * and every layer has both matrices of every target. Without a model only the rank and the
 * pairing of A with B are checked. `fail` throws the caller's error type with its context.
 */
export function checkAdapterTensors(
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  lora: Pick<LoraConfig, 'r' | 'targets'>,
  model: ModelConfig | null,
  fail: (problem: string) => never,
): void {
  const { r } = lora;
  for (const [name, { shape }] of tensors) {
    const key = parsePeftName(name);
    if (!key) {
      fail(
        `tensor "${name}" is not a LoRA tensor webtune knows; expected names like ` +
          `"${peftTensorName({ layer: 0, target: 'q_proj' }, 'A')}" for the projections ${LORA_TARGETS.join(', ')}`,
      );
    }
    if (!lora.targets.includes(key.target)) {
      fail(`tensor "${name}" adapts ${key.target}, which is not among the target modules (${lora.targets.join(', ')})`);
    }
    const pairName = peftTensorName(key, key.matrix === 'A' ? 'B' : 'A');
    if (!model && !tensors.has(pairName)) fail(`tensor "${name}" has no matching "${pairName}"`);
    const rankAxis = key.matrix === 'A' ? 0 : 1;
    if (shape.length !== 2) fail(`tensor "${name}" has shape ${fmt(shape)}, but LoRA matrices are 2-D`);
    if (!model) {
      if (shape[rankAxis] !== r) fail(`tensor "${name}" has shape ${fmt(shape)}, which is not rank ${r} (the adapter's r)`);
      continue;
    }
    if (key.layer >= model.numLayers) {
      fail(
        `tensor "${name}" is for layer ${key.layer}, but the model has ${model.numLayers} layers: ` +
          'the adapter was trained for a different base model',
      );
    }
    const { inFeatures, outFeatures } = projectionShape(model, key.target);
    const expected = key.matrix === 'A' ? [r, inFeatures] : [outFeatures, r];
    if (shape[0] === expected[0] && shape[1] === expected[1]) continue;
    const otherAxis = 1 - rankAxis;
    if (shape[otherAxis] === expected[otherAxis]) {
      fail(
        `tensor "${name}" has shape ${fmt(shape)}, expected ${fmt(expected)}: its rank is ${shape[rankAxis]} but the adapter's r is ${r}`,
      );
    }
    fail(
      `tensor "${name}" has shape ${fmt(shape)}, but this model needs ${fmt(expected)} ` +
        `(${key.matrix === 'A' ? '[r, in_features]' : '[out_features, r]'} of ${key.target}): ` +
        'the adapter was trained for a different base model',
    );
  }
  if (!model) return;
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const target of lora.targets) {
      for (const matrix of ['A', 'B'] as const) {
        const name = peftTensorName({ layer, target }, matrix);
        if (!tensors.has(name)) {
          fail(`tensor "${name}" is missing; an adapter must cover every layer (0 to ${model.numLayers - 1}) of each target module`);
        }
      }
    }
  }
}

import smollm2 from '../../bench/configs/smollm2-135m.json';
import stories260K from '../../bench/configs/stories260K.json';

/**
 * Hugging Face config.json files of the models the benchmark knows by name. They live in
 * bench/configs/ so that bench/torch_peft.py builds exactly the same shapes.
 */
export const BUILT_IN_CONFIGS: Record<string, unknown> = {
  stories260K,
  'smollm2-135m': smollm2,
};

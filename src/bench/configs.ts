import llama32_1b from '../../bench/configs/llama3.2-1b.json';
import qwen25_05b from '../../bench/configs/qwen2.5-0.5b.json';
import qwen25_15b from '../../bench/configs/qwen2.5-1.5b.json';
import smollm2_17b from '../../bench/configs/smollm2-1.7b.json';
import smollm2_135m from '../../bench/configs/smollm2-135m.json';
import smollm2_360m from '../../bench/configs/smollm2-360m.json';
import stories260K from '../../bench/configs/stories260K.json';
import tinyllama_11b from '../../bench/configs/tinyllama-1.1b.json';

/**
 * Hugging Face config.json files of the models the benchmark knows by name (the real files; where
 * each comes from is in bench/configs/README.md). They live in bench/configs/ so that
 * bench/torch_peft.py builds exactly the same shapes.
 */
export const BUILT_IN_CONFIGS: Record<string, unknown> = {
  stories260K,
  'smollm2-135m': smollm2_135m,
  'smollm2-360m': smollm2_360m,
  'smollm2-1.7b': smollm2_17b,
  'qwen2.5-0.5b': qwen25_05b,
  'qwen2.5-1.5b': qwen25_15b,
  'llama3.2-1b': llama32_1b,
  'tinyllama-1.1b': tinyllama_11b,
};

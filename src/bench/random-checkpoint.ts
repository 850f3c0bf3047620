/**
 * Writes a random-weight Hugging Face folder to disk, stored BF16 as the Hub's checkpoints are:
 * config.json, a word-level tokenizer of the config's vocabulary size, and model.safetensors,
 * written block by block so a 3 GB checkpoint never sits in memory. For memory measurements of
 * loading (heap-check.ts), not for quality: matrices are uniform with std 0.02, norms 1.
 */
import { type FileHandle, mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseModelConfig } from '../model/config';
import { expectedTensorShapes } from '../model/weights';
import { seededUniform } from '../util/random';

/** Qwen2.5-1.5B-Instruct's config.json (hidden 1536, 28 layers, 12 heads, 2 kv heads, tied 151,936 vocabulary). */
export const QWEN2_5_1_5B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 1536,
  initializer_range: 0.02,
  intermediate_size: 8960,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 12,
  num_hidden_layers: 28,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const BLOCK = 4 * 2 ** 20;

async function writeAll(handle: FileHandle, bytes: Uint8Array, at: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) done += (await handle.write(bytes, done, bytes.length - done, at + done)).bytesWritten;
}

/** The folder's safetensors size in bytes. */
export async function writeRandomCheckpoint(dir: string, configJson: Record<string, unknown>, seed = 0): Promise<number> {
  const config = parseModelConfig(configJson, 'config.json');
  const shapes = [...expectedTensorShapes(config)].sort(([a], [b]) => (a < b ? -1 : 1));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  await mkdir(dir, { recursive: true });
  const handle = await open(path.join(dir, 'model.safetensors'), 'w');
  try {
    const prefix = new Uint8Array(8 + json.length);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
    prefix.set(new TextEncoder().encode(json), 8);
    await writeAll(handle, prefix, 0);
    let at = prefix.length;
    const block = new Uint16Array(BLOCK / 2);
    const f32 = new Float32Array(1);
    const bits = new Uint32Array(f32.buffer);
    for (const [index, [name, shape]] of shapes.entries()) {
      const uniform = seededUniform(seed * 7919 + index);
      const bound = name.endsWith('.bias') ? 0.1 : 0.02 * Math.sqrt(3);
      const norm = name.endsWith('norm.weight');
      let left = shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, block.length);
        for (let i = 0; i < n; i++) {
          f32[0] = norm ? 1 : (2 * uniform() - 1) * bound;
          block[i] = bits[0] >>> 16;
        }
        await writeAll(handle, new Uint8Array(block.buffer, 0, n * 2), at);
        at += n * 2;
        left -= n;
      }
    }
  } finally {
    await handle.close();
  }
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(configJson, null, 2));
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 3; i < config.vocabSize; i++) vocab[`w${i}`] = i;
  const special = (content: string, id: number) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special('<unk>', 0), special('<s>', 1), special('</s>', 2)],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
  };
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' }));
  return 8 + json.length + offset;
}

/**
 * A GGUF file (or the shards of one) as a base model for training, in the same shape as a Hugging
 * Face folder (model/weights.ts `OpenedModel`: config, weights, tokenizer), plus what the page and
 * the export need to know about the file: its quantization mix, its size, where its tokenizer
 * came from and whether it reproduces llama.cpp's exactly.
 *
 * The weights reach the engine as f32 values of exactly the stored blocks (weights.ts), so a
 * LoRA trained here is trained against the very weights llama.cpp and Ollama run.
 */
import type { GgufBaseDetails, OpenedModel } from '../model/weights';
import type { ByteSource } from './byte-source';
import { ggufTokenizer } from './tokenizer-json';
import { stringOf } from './values';
import { openGgufModel } from './weights';

/** The model's own tokenizer files, when the user adds them to replace the one built from the GGUF metadata. */
export interface TokenizerFiles {
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
}

export type OpenedGgufBase = OpenedModel & { gguf: GgufBaseDetails };

const MAGIC = [0x47, 0x47, 0x55, 0x46];

/** Whether the bytes start with the GGUF magic: how a GGUF is told apart (Ollama's blobs have no extension). */
export async function isGguf(source: ByteSource): Promise<boolean> {
  if (source.size < 4) return false;
  const head = await source.read(0, 4);
  return MAGIC.every((b, i) => head[i] === b);
}

export async function openGgufBase(sources: ByteSource | ByteSource[], tokenizerFiles?: TokenizerFiles | null): Promise<OpenedGgufBase> {
  const { config, weights, file } = await openGgufModel(sources);
  const byType = new Map<string, { tensors: number; bytes: number }>();
  for (const t of file.tensors.values()) {
    const entry = byType.get(t.type.name) ?? { tensors: 0, bytes: 0 };
    entry.tensors++;
    entry.bytes += t.byteSize;
    byType.set(t.type.name, entry);
  }
  const quantization = [...byType].map(([type, v]) => ({ type, ...v })).sort((a, b) => b.bytes - a.bytes);
  const fileBytes = file.shards.reduce((n, s) => n + s.source.size, 0);
  const base = { file, quantization, fileBytes, modelName: stringOf(file.metadata.get('general.name')) };
  if (tokenizerFiles) {
    return {
      config,
      weights,
      tokenizerJson: tokenizerFiles.tokenizerJson,
      tokenizerConfig: tokenizerFiles.tokenizerConfig,
      gguf: { ...base, tokenizer: { source: 'tokenizer.json', problems: [] } },
    };
  }
  const tokenizer = ggufTokenizer(file.metadata, file.name);
  return {
    config,
    weights,
    tokenizerJson: tokenizer.tokenizerJson,
    tokenizerConfig: tokenizer.tokenizerConfig,
    gguf: { ...base, tokenizer: { source: 'gguf', kind: tokenizer.kind, problems: tokenizer.problems } },
  };
}

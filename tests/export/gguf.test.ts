import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GGMLQuantizationType, gguf, GGUFValueType } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterTensors } from '../../src/export/adapter';
import { AdapterExportError } from '../../src/export/errors';
import { ggufAdapterFile } from '../../src/export/gguf';
import { toInterleaved } from '../../src/gguf/rotary';
import { numpyPermute } from '../reference/rotary-permute';
import { LORA_TARGETS } from '../../src/lora/config';
import type { ModelConfig } from '../../src/model/config';
import {
  expectBitIdentical,
  expectRefusal,
  qwen2Config,
  randomAdapter,
  randomValues,
  removeTempDirs,
  storiesConfig,
  tempDir,
} from './helpers';

let stories: ModelConfig;
beforeAll(async () => {
  stories = await storiesConfig();
});
afterAll(removeTempDirs);

const GGUF_NAMES: Record<string, string> = {
  q_proj: 'attn_q',
  k_proj: 'attn_k',
  v_proj: 'attn_v',
  o_proj: 'attn_output',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};
const peftName = (layer: number, target: string, m: 'A' | 'B') => {
  const block = ['gate_proj', 'up_proj', 'down_proj'].includes(target) ? 'mlp' : 'self_attn';
  return `base_model.model.model.layers.${layer}.${block}.${target}.lora_${m}.weight`;
};

/** Parses the file with Hugging Face's GGUF reader and returns each tensor's info and F32 data. */
async function parseGguf(bytes: Uint8Array) {
  const file = path.join(await tempDir('gguf'), 'adapter.gguf');
  await writeFile(file, bytes);
  const parsed = await gguf(file, { allowLocalFile: true, typedMetadata: true });
  const tensors = new Map(
    parsed.tensorInfos.map((info) => {
      const numel = info.shape.reduce((a, b) => a * Number(b), 1);
      const begin = Number(parsed.tensorDataOffset + info.offset);
      const data = new Float32Array(bytes.slice(begin, begin + 4 * numel).buffer);
      return [info.name, { info, data }] as const;
    }),
  );
  return { parsed, tensors };
}

describe('ggufAdapterFile', () => {
  it('writes the metadata, names, shapes and F32 data llama.cpp reads (llama: q/k B rows permuted)', async () => {
    const adapter = randomAdapter(stories, { r: 3, alpha: 6, targets: [...LORA_TARGETS] });
    const bytes = ggufAdapterFile(adapter, stories, { name: 'stories-lora' });
    const { parsed, tensors } = await parseGguf(bytes);

    expect(parsed.metadata.version).toBe(3);
    expect(parsed.littleEndian).toBe(true);
    const meta = parsed.typedMetadata;
    expect(meta['general.architecture']).toEqual({ value: 'llama', type: GGUFValueType.STRING });
    expect(meta['general.type']).toEqual({ value: 'adapter', type: GGUFValueType.STRING });
    expect(meta['general.name']).toEqual({ value: 'stories-lora', type: GGUFValueType.STRING });
    expect(meta['general.alignment']).toEqual({ value: 32, type: GGUFValueType.UINT32 });
    expect(meta['adapter.type']).toEqual({ value: 'lora', type: GGUFValueType.STRING });
    expect(meta['adapter.lora.alpha']).toEqual({ value: 6, type: GGUFValueType.FLOAT32 });

    expect(Number(parsed.tensorDataOffset) % 32).toBe(0);
    expect(tensors.size).toBe(stories.numLayers * LORA_TARGETS.length * 2);
    for (let layer = 0; layer < stories.numLayers; layer++) {
      for (const target of LORA_TARGETS) {
        const A = adapter.tensors.get(peftName(layer, target, 'A'))!;
        const B = adapter.tensors.get(peftName(layer, target, 'B'))!;
        const a = tensors.get(`blk.${layer}.${GGUF_NAMES[target]}.weight.lora_a`)!;
        const b = tensors.get(`blk.${layer}.${GGUF_NAMES[target]}.weight.lora_b`)!;
        for (const t of [a, b]) {
          expect(t.info.dtype).toBe(GGMLQuantizationType.F32);
          expect(t.info.n_dims).toBe(2);
          expect(Number(t.info.offset) % 32).toBe(0);
        }
        // GGUF dims are innermost first: A [r, in] -> [in, r], B [out, r] -> [r, out].
        expect(a.info.shape).toEqual([BigInt(A.shape[1]), BigInt(3)]);
        expect(b.info.shape).toEqual([BigInt(3), BigInt(B.shape[0])]);
        expectBitIdentical(a.data, A.data);
        if (target === 'q_proj' || target === 'k_proj') {
          const heads = target === 'q_proj' ? stories.numHeads : stories.numKvHeads;
          expectBitIdentical(b.data, numpyPermute(B.data, B.shape[0], 3, heads));
          expect(b.data).not.toEqual(B.data);
        } else {
          expectBitIdentical(b.data, B.data);
        }
      }
    }
  });

  it('keeps the Hugging Face layout for qwen2', async () => {
    const qwen = qwen2Config();
    const adapter = randomAdapter(qwen, { r: 2, alpha: 4, targets: ['q_proj', 'k_proj', 'o_proj'] });
    const { parsed, tensors } = await parseGguf(ggufAdapterFile(adapter, qwen));
    expect(parsed.metadata['general.architecture']).toBe('qwen2');
    expect(tensors.size).toBe(qwen.numLayers * 3 * 2);
    for (const [name, t] of adapter.tensors) {
      const [, layer, , target, m] = /layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_([AB])/.exec(name)!;
      expectBitIdentical(tensors.get(`blk.${layer}.${GGUF_NAMES[target]}.weight.lora_${m.toLowerCase()}`)!.data, t.data);
    }
  });

  it('stores alpha * sqrt(r) for rsLoRA, so llama.cpp scale alpha / r is alpha / sqrt(r)', async () => {
    const adapter = randomAdapter(stories, { r: 16, alpha: 8, useRslora: true, targets: ['v_proj'] });
    const { parsed } = await parseGguf(ggufAdapterFile(adapter, stories));
    const metadata = parsed.metadata as Record<string, unknown>;
    const alpha = metadata['adapter.lora.alpha'] as number;
    expect(alpha).toBe(32);
    expect(alpha / 16).toBe(8 / Math.sqrt(16));
    expect(metadata['general.name']).toBe('webtune LoRA adapter');
  });

  it('refuses an adapter that does not fit the model', async () => {
    const adapter = randomAdapter(qwen2Config(), { targets: ['q_proj'] });
    await expectRefusal(
      () => ggufAdapterFile(adapter, stories),
      AdapterExportError,
      'Cannot export the adapter as GGUF',
      'different base model',
    );
  });
});

describe('rotary permutation', () => {
  it('matches a hand-worked example: each head [a0 a1 | b0 b1] becomes [a0 b0 a1 b1]', () => {
    const rows = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect([...toInterleaved(rows, 8, 2)]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    expect([...toInterleaved(rows, 8, 1)]).toEqual([0, 4, 1, 5, 2, 6, 3, 7]);
    // Two columns: whole rows move.
    expect([...toInterleaved(rows, 4, 1)]).toEqual([0, 1, 4, 5, 2, 3, 6, 7]);
    expect([...numpyPermute(rows, 4, 2, 1)]).toEqual([0, 1, 4, 5, 2, 3, 6, 7]);
  });

  /**
   * The property the permutation exists for: llama.cpp rotates adjacent pairs (2i, 2i+1) of the
   * permuted q/k, Hugging Face rotates (i, i + d/2) of the original; both must give the same
   * attention scores. Checked on the adapter's q/k deltas (B A x) as exported.
   */
  it('gives llama.cpp (interleaved RoPE) the attention scores Hugging Face (half-split RoPE) computes', async () => {
    const adapter = randomAdapter(stories, { r: 4, targets: ['q_proj', 'k_proj'] });
    const { tensors } = await parseGguf(ggufAdapterFile(adapter, stories));
    const d = stories.headDim;
    const half = d / 2;
    const theta = (i: number, pos: number) => pos * stories.ropeTheta ** (-(2 * i) / d);
    const ropeHalfSplit = (v: Float64Array, pos: number) => {
      const out = new Float64Array(v.length);
      for (let h = 0; h < v.length / d; h++)
        for (let i = 0; i < half; i++) {
          const [x, y] = [v[h * d + i], v[h * d + i + half]];
          out[h * d + i] = x * Math.cos(theta(i, pos)) - y * Math.sin(theta(i, pos));
          out[h * d + i + half] = y * Math.cos(theta(i, pos)) + x * Math.sin(theta(i, pos));
        }
      return out;
    };
    const ropeInterleaved = (v: Float64Array, pos: number) => {
      const out = new Float64Array(v.length);
      for (let h = 0; h < v.length / d; h++)
        for (let i = 0; i < half; i++) {
          const [x, y] = [v[h * d + 2 * i], v[h * d + 2 * i + 1]];
          out[h * d + 2 * i] = x * Math.cos(theta(i, pos)) - y * Math.sin(theta(i, pos));
          out[h * d + 2 * i + 1] = x * Math.sin(theta(i, pos)) + y * Math.cos(theta(i, pos));
        }
      return out;
    };
    const project = (A: Float32Array, B: Float32Array, out: number, r: number, x: Float32Array) => {
      const u = new Float64Array(r);
      for (let k = 0; k < r; k++) for (let i = 0; i < x.length; i++) u[k] += A[k * x.length + i] * x[i];
      const y = new Float64Array(out);
      for (let o = 0; o < out; o++) for (let k = 0; k < r; k++) y[o] += B[o * r + k] * u[k];
      return y;
    };
    const scores = (q: Float64Array, k: Float64Array) => {
      const group = stories.numHeads / stories.numKvHeads;
      return Array.from({ length: stories.numHeads }, (_, h) => {
        let s = 0;
        for (let i = 0; i < d; i++) s += q[h * d + i] * k[Math.floor(h / group) * d + i];
        return s;
      });
    };
    const xq = randomValues(stories.hiddenSize, 11);
    const xk = randomValues(stories.hiddenSize, 12);
    const hf = (t: string) => [adapter.tensors.get(peftName(0, t, 'A'))!.data, adapter.tensors.get(peftName(0, t, 'B'))!.data] as const;
    const gg = (t: string) => [tensors.get(`blk.0.${t}.weight.lora_a`)!.data, tensors.get(`blk.0.${t}.weight.lora_b`)!.data] as const;
    const qDim = stories.numHeads * d;
    const kDim = stories.numKvHeads * d;
    for (const [pq, pk] of [
      [5, 2],
      [17, 17],
      [300, 1],
    ]) {
      const expected = scores(
        ropeHalfSplit(project(...hf('q_proj'), qDim, 4, xq), pq),
        ropeHalfSplit(project(...hf('k_proj'), kDim, 4, xk), pk),
      );
      const actual = scores(
        ropeInterleaved(project(...gg('attn_q'), qDim, 4, xq), pq),
        ropeInterleaved(project(...gg('attn_k'), kDim, 4, xk), pk),
      );
      for (let h = 0; h < expected.length; h++) expect(actual[h]).toBeCloseTo(expected[h], 10);
      // Without the permutation the interleaved rotation pairs the wrong components.
      const unpermuted = scores(
        ropeInterleaved(project(...hf('q_proj'), qDim, 4, xq), pq),
        ropeInterleaved(project(...hf('k_proj'), kDim, 4, xk), pk),
      );
      if (pq !== pk) expect(unpermuted.some((s, h) => Math.abs(s - expected[h]) > 1e-3)).toBe(true);
    }
  });
});

describe('AdapterTensors input', () => {
  it('is not modified by the export', () => {
    const adapter: AdapterTensors = randomAdapter(stories, { targets: ['q_proj'] });
    const before = adapter.tensors.get(peftName(0, 'q_proj', 'B'))!.data.slice();
    ggufAdapterFile(adapter, stories);
    expectBitIdentical(adapter.tensors.get(peftName(0, 'q_proj', 'B'))!.data, before);
  });
});

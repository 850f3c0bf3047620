/**
 * Where the tensors that share one layer buffer lie in it: q, k, v in `qkv`, and the q/k/v adapters'
 * u in `u qkv` (src/model/workspace-plan.ts declares both). Each range starts at a 256-byte boundary,
 * so every kernel can bind it; sharing one buffer lets one grouped product (src/kernels/matmul.ts
 * matmulXWtGroups) write all of them.
 */
import type { LoraTarget } from '../lora/config';
import type { ModelConfig } from './config';
import type { LayerKey } from './workspace-plan';

/**
 * Where q [M, H*D], k and v [M, KV*D] lie in the layer's one `qkv` buffer, in floats: one after another,
 * each starting at a 256-byte boundary so that every kernel can bind it as a range; `floats` in all.
 * One buffer, so that q/k/v are one grouped product's output (src/kernels/matmul.ts matmulXWtGroups).
 */
export function qkvLayout(
  M: number,
  config: Pick<ModelConfig, 'numHeads' | 'numKvHeads' | 'headDim'>,
): { q: number; k: number; v: number; floats: number } {
  const aligned = (floats: number) => Math.ceil(floats / 64) * 64;
  const qFloats = M * config.numHeads * config.headDim;
  const kvFloats = M * config.numKvHeads * config.headDim;
  const k = aligned(qFloats);
  const v = k + aligned(kvFloats);
  return { q: 0, k, v, floats: v + kvFloats };
}

const QKV_TARGETS: readonly LoraTarget[] = ['q_proj', 'k_proj', 'v_proj'];

/** The buffer that holds target t's u = drop(x) A^T [M, r]. */
export function uKey(t: LoraTarget): LayerKey {
  return QKV_TARGETS.includes(t) ? 'u qkv' : `u ${t}`;
}

/**
 * Where the u [M, r] of the q/k/v adapters among `targets` lie in `u qkv`, in floats, each at a
 * 256-byte boundary (`floats` in all; 0 with none): one buffer, so that the adapters' A products,
 * which share the input n1 when there is no dropout, are one grouped product.
 */
export function loraULayout(
  M: number,
  r: number,
  targets: readonly LoraTarget[],
): { ranges: Map<LoraTarget, { offset: number; floats: number }>; floats: number } {
  const stride = Math.ceil((M * r) / 64) * 64;
  const qkv = QKV_TARGETS.filter((t) => targets.includes(t));
  return {
    ranges: new Map(qkv.map((t, i) => [t, { offset: i * stride, floats: M * r }])),
    floats: qkv.length ? (qkv.length - 1) * stride + M * r : 0,
  };
}

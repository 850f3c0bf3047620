/** LoRA settings, validated in one place. Defaults follow PEFT. */

export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export interface LoraConfig {
  /** Rank of A [r, in] and B [out, r]. */
  r: number;
  /** scaling = alpha / r (or alpha / sqrt(r) with rsLoRA). */
  alpha: number;
  /** Dropout probability on the adapter's input, training only. */
  dropout: number;
  /** Projections that get an adapter, by Hugging Face module name. */
  targets: LoraTarget[];
  /** rsLoRA: scale by alpha / sqrt(r) so larger ranks keep learning (Kalajdzievski 2023). */
  useRslora: boolean;
}

export class LoraConfigError extends Error {
  override name = 'LoraConfigError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`LoRA setting "${field}": ${message}`);
  }
}

export function loraScaling(config: Pick<LoraConfig, 'r' | 'alpha' | 'useRslora'>): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

export function validateLoraConfig(input: Omit<Partial<LoraConfig>, 'targets'> & { targets?: readonly string[] }): LoraConfig {
  const r = input.r ?? 8;
  if (!Number.isInteger(r) || r < 1) throw new LoraConfigError('r', `must be a positive integer, got ${r}`);
  const alpha = input.alpha ?? 2 * r;
  if (!Number.isFinite(alpha) || alpha <= 0) throw new LoraConfigError('alpha', `must be a positive number, got ${alpha}`);
  const dropout = input.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new LoraConfigError('dropout', `must be in [0, 1), got ${dropout}`);
  const targets = [...(input.targets ?? ['q_proj', 'k_proj', 'v_proj'])];
  if (targets.length === 0) throw new LoraConfigError('targets', 'choose at least one projection');
  for (const target of targets) {
    if (!(LORA_TARGETS as readonly string[]).includes(target)) {
      throw new LoraConfigError('targets', `unknown module "${target}"; choose from ${LORA_TARGETS.join(', ')}`);
    }
  }
  const ordered = LORA_TARGETS.filter((t) => targets.includes(t));
  return { r, alpha, dropout, targets: ordered, useRslora: input.useRslora ?? false };
}

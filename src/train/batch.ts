/** A tokenized batch ready for the GPU: B rows of T tokens, labels shifted into per-row targets. */
export interface Batch {
  B: number;
  T: number;
  /** [B*T] token ids. */
  ids: Uint32Array;
  /** [B*T] target of each position (label t+1 of the same row), -100 where nothing is predicted. */
  targets: Int32Array;
  /** Positions whose target counts in the loss. */
  targetCount: number;
}

export const IGNORE_INDEX = -100;

export class BatchShapeError extends Error {
  override name = 'BatchShapeError';
}

/**
 * Builds a batch with Hugging Face's causal-LM convention: labels have the shape of input_ids and
 * the model shifts them, so logits at position t are scored against labels[t + 1].
 */
export function makeBatch(inputIds: number[][], labels?: number[][]): Batch {
  const B = inputIds.length;
  if (B === 0) throw new BatchShapeError('a batch needs at least one row');
  const T = inputIds[0].length;
  if (T === 0) throw new BatchShapeError('rows must hold at least one token');
  const ids = new Uint32Array(B * T);
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  let targetCount = 0;
  for (let b = 0; b < B; b++) {
    const row = inputIds[b];
    if (row.length !== T) throw new BatchShapeError(`row ${b} has ${row.length} tokens, row 0 has ${T}: pad rows to one length`);
    const labelRow = labels?.[b];
    if (labels && (!labelRow || labelRow.length !== T)) {
      throw new BatchShapeError(`labels row ${b} must have ${T} entries like input_ids`);
    }
    for (let t = 0; t < T; t++) {
      ids[b * T + t] = row[t];
      if (labelRow && t + 1 < T && labelRow[t + 1] !== IGNORE_INDEX) {
        targets[b * T + t] = labelRow[t + 1];
        targetCount++;
      }
    }
  }
  return { B, T, ids, targets, targetCount };
}

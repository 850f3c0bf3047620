import source from '../../shaders/cross-entropy.wgsl?raw';
import { asRange, type Binding, type Gpu } from '../gpu/context';
import { storedBytes, type WeightFormat } from '../model/weight-format';
import { embeddingForward } from './embedding';
import { matmulDyW, matmulXWt } from './matmul';

const WG = 256;
const FINISH_WG = 64;
/** Output tile width of matmul.wgsl: chunks that are multiples of it leave no idle columns. */
const MATMUL_TILE = 64;

/**
 * Rows rowStart .. rowStart + rows - 1 of the [V, C] lm_head (or tied embedding) matrix, in the
 * weight format the caller passes (src/model/weight-format.ts): row r starts r * C elements in.
 */
export interface VocabPiece {
  weight: Binding;
  rowStart: number;
  rows: number;
}

export interface CrossEntropyTensors {
  /** [M, C] final-norm output. */
  hidden: Binding;
  /** i32 [M], already shifted by the caller: target for row m; -100 (any value outside [0, V)) = ignored. */
  targets: Binding;
  /** f32 [M]: lse - logit[target], 0 where ignored. */
  rowLoss: Binding;
  /** [M, C], overwritten with d(loss)/d(hidden) when given. */
  dHidden?: Binding;
  /** [M, chunk] logits scratch. */
  scratch: Binding;
  /** [M, 4]: running max, running sum of exp, target logit, lse. */
  stats: Binding;
  /** The [V, C] lm_head (or tied embedding) matrix, in pieces that tile the vocabulary. */
  lmHead: VocabPiece[];
}

/** Tokens, hidden size, vocabulary, and vocabulary rows per chunk (see crossEntropyChunkRows). */
export interface CrossEntropyDims {
  M: number;
  C: number;
  V: number;
  chunk: number;
}

/** Vocabulary rows per chunk such that the [M, chunk] f32 scratch fits in `maxScratchBytes`. */
export function crossEntropyChunkRows(M: number, maxScratchBytes: number): number {
  const rows = Math.floor(maxScratchBytes / (4 * M));
  if (rows < 1) throw new Error(`cross-entropy: ${maxScratchBytes} bytes cannot hold one vocabulary row for ${M} tokens`);
  return rows < MATMUL_TILE ? rows : rows - (rows % MATMUL_TILE);
}

/**
 * Loss per row (rowLoss) and, when dHidden is given, dHidden = d(sum of rowLoss * lossScale)/d(hidden),
 * with the lm_head applied chunk by chunk (at most `chunk` vocabulary rows at a time, never crossing
 * a piece). `lossScale` (default 1) scales only the gradient: the caller passes 1 / (non-ignored
 * targets in the whole optimizer step). Each chunk's logits are computed once: training folds them
 * into dHidden as it goes with an online softmax (shaders/cross-entropy.wgsl), so the gradient needs
 * no second pass over the vocabulary; a vocabulary in one chunk turns its logits, still in the
 * scratch, into dlogits after the forward instead. `format` is how the lm_head pieces are stored (default 'f32');
 * the logits, the loss and dHidden are f32.
 */
export function crossEntropyForwardBackward(
  gpu: Gpu,
  t: CrossEntropyTensors,
  { M, C, V, chunk }: CrossEntropyDims,
  { lossScale = 1, format = 'f32' }: { lossScale?: number; format?: WeightFormat } = {},
): void {
  if (asRange(t.scratch).size < M * chunk * 4) throw new Error(`cross-entropy: scratch needs ${M * chunk * 4} bytes`);
  const chunks = vocabChunks(t.lmHead, V, C, chunk, format);
  const rowGrid = gpu.grid(M);
  const dHidden = t.dHidden;
  // One chunk's logits are still in the scratch after the forward: nothing to fold as it goes.
  const online = dHidden !== undefined && chunks.length > 1;
  const scaleRows = (last: 0 | 1) =>
    gpu.dispatch(gpu.kernel(source, 'cross_entropy_scale_rows'), {
      params: { rows: M, len: C, last, vocab: V, loss_scale: lossScale },
      bindings: { grad_rows: dHidden!, targets: t.targets, stats: t.stats },
      workgroups: gpu.grid(Math.ceil((M * C) / WG)),
    });
  chunks.forEach((c, i) => {
    matmulXWt(gpu, { X: t.hidden, W: c.weight, Y: t.scratch }, { M, N: c.len, K: C }, { format });
    gpu.dispatch(gpu.kernel(source, online ? 'cross_entropy_online_chunk' : 'cross_entropy_forward_chunk'), {
      params: { rows: M, len: c.len, col0: c.col0, first: i === 0 ? 1 : 0, vocab: V },
      bindings: { logits: t.scratch, targets: t.targets, stats: t.stats },
      workgroups: rowGrid,
    });
    if (!online) return;
    // Rows accumulated over the earlier chunks move to this chunk's running max, then gain P E_c.
    if (i > 0) scaleRows(0);
    matmulDyW(gpu, { dY: t.scratch, W: c.weight, dX: dHidden! }, { M, N: c.len, K: C }, { beta: i === 0 ? 0 : 1, format });
  });
  if (online) {
    scaleRows(1);
    for (const piece of t.lmHead) {
      embeddingForward(
        gpu,
        { ids: t.targets, table: piece.weight, out: dHidden },
        { M, C, rowStart: piece.rowStart, rowCount: piece.rows },
        { format, alpha: -lossScale },
      );
    }
  }
  gpu.dispatch(gpu.kernel(source, 'cross_entropy_forward_finish'), {
    params: { rows: M, vocab: V },
    bindings: { targets: t.targets, stats: t.stats, row_loss: t.rowLoss },
    workgroups: gpu.grid(Math.ceil(M / FINISH_WG)),
  });
  if (!dHidden || online) return;
  const [only] = chunks;
  gpu.dispatch(gpu.kernel(source, 'cross_entropy_backward_chunk'), {
    params: { rows: M, len: only.len, col0: only.col0, vocab: V, loss_scale: lossScale },
    bindings: { logits: t.scratch, targets: t.targets, stats: t.stats },
    workgroups: gpu.grid(Math.ceil((M * only.len) / WG)),
  });
  matmulDyW(gpu, { dY: t.scratch, W: only.weight, dX: dHidden }, { M, N: only.len, K: C }, { format });
}

/**
 * out [rows, V] = logits of hidden rows rowStart .. rowStart + rows - 1 (generation: the last
 * position); `format` is how the lm_head pieces are stored (default 'f32').
 */
export function logitsForRows(
  gpu: Gpu,
  { hidden, lmHead, out }: { hidden: Binding; lmHead: VocabPiece[]; out: Binding },
  { rowStart, rows, C, V }: { rowStart: number; rows: number; C: number; V: number },
  { format = 'f32' }: { format?: WeightFormat } = {},
): void {
  if (rows === 0) return;
  const h = asRange(hidden);
  const o = asRange(out);
  const hiddenRows = { buffer: h.buffer, offset: h.offset + rowStart * C * 4, size: rows * C * 4 };
  for (const piece of checkedPieces(lmHead, V, C, format)) {
    const outColumns = { buffer: o.buffer, offset: o.offset + piece.rowStart * 4, size: ((rows - 1) * V + piece.rows) * 4 };
    matmulXWt(gpu, { X: hiddenRows, W: piece.weight, Y: outColumns }, { M: rows, N: piece.rows, K: C, outStride: V }, { format });
  }
}

interface Chunk {
  /** The chunk's rows of its piece's weight: an unaligned sub-range, which the matmul wrapper accepts. */
  weight: Binding;
  col0: number;
  len: number;
}

/** Splits the pieces into chunks of at most `chunk` rows. */
function vocabChunks(pieces: VocabPiece[], V: number, C: number, chunk: number, format: WeightFormat): Chunk[] {
  if (chunk < 1) throw new Error(`cross-entropy: chunk must be positive, got ${chunk}`);
  const rowBytes = storedBytes(format, C);
  const chunks: Chunk[] = [];
  for (const piece of checkedPieces(pieces, V, C, format)) {
    const w = asRange(piece.weight);
    for (let local = 0; local < piece.rows; local += chunk) {
      const len = Math.min(chunk, piece.rows - local);
      chunks.push({
        weight: { buffer: w.buffer, offset: w.offset + local * rowBytes, size: len * rowBytes },
        col0: piece.rowStart + local,
        len,
      });
    }
  }
  return chunks;
}

/** The pieces in vocabulary order, after checking that they tile [0, V) and hold their rows. */
function checkedPieces(pieces: VocabPiece[], V: number, C: number, format: WeightFormat): VocabPiece[] {
  const sorted = [...pieces].sort((a, b) => a.rowStart - b.rowStart);
  let next = 0;
  for (const piece of sorted) {
    if (piece.rowStart !== next) throw new Error(`cross-entropy: vocabulary rows from ${next} are missing or overlap`);
    if (asRange(piece.weight).size < storedBytes(format, piece.rows * C)) {
      throw new Error(`cross-entropy: the piece at row ${piece.rowStart} holds fewer than ${piece.rows} rows`);
    }
    next += piece.rows;
  }
  if (next !== V) throw new Error(`cross-entropy: pieces cover ${next} vocabulary rows, expected ${V}`);
  return sorted;
}

/**
 * How src/kernels/matmul.ts binds its operands: a storage offset must be a multiple of the device's
 * alignment, so a tensor at any offset is bound from the aligned offset before it and the shaders
 * add the rest in elements (off_a, off_b, ...).
 */
import { asRange, type Binding, type Gpu } from '../gpu/context';
import { BLOCK_LAYOUTS, bytesPerWeight, isBlockFormat, storedBytes, type WeightFormat } from '../model/weight-format';

/** A block-format W's rows (K values) must be whole blocks: a block never spans two rows. */
export function wholeBlocks(K: number, format: WeightFormat = 'f32'): void {
  if (isBlockFormat(format) && K % BLOCK_LAYOUTS[format].blockSize !== 0) {
    throw new Error(`matmul: rows of ${K} values are not whole ${format} blocks of ${BLOCK_LAYOUTS[format].blockSize}`);
  }
}

export interface Operand {
  binding: Binding;
  /** Elements between the aligned binding start and the tensor. */
  offset: number;
}

/**
 * Rounds a binding's offset down to the device's storage offset alignment and returns the rest in
 * elements, so callers may address any row of a matrix (a vocabulary chunk, one token's hidden
 * state). Out-of-range reads in WGSL are silently clamped, so a too-small binding fails here instead.
 * A 16-bit weight may start and end in the middle of a word: the bound range is widened to whole
 * words, which stay inside the buffer since buffers are whole words. A block-format weight starts at
 * a block: the bound range starts a whole number of blocks before it, at an aligned offset, so the
 * shader counts the rest in elements (blocks times block size).
 */
export function operand(gpu: Gpu, binding: Binding, elements: number, name: string, format: WeightFormat = 'f32'): Operand {
  const { buffer, offset, size } = asRange(binding);
  const needed = storedBytes(format, elements);
  if (size < needed) throw new Error(`matmul: ${name} needs ${needed} bytes, binding has ${size}`);
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  let base = offset - (offset % align);
  let rest = 0;
  if (isBlockFormat(format)) {
    const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
    const blocks = blockStart(offset, blockBytes, align);
    if (blocks === null) throw new Error(`matmul: ${name} offset ${offset} is no whole number of ${format} blocks after an aligned offset`);
    base = offset - blocks * blockBytes;
    rest = blocks * blockSize;
  } else {
    const bytes = bytesPerWeight(format);
    if (offset % bytes !== 0) throw new Error(`matmul: ${name} offset ${offset} is not a multiple of ${bytes}`);
    rest = (offset - base) / bytes;
  }
  const boundSize = Math.ceil((size + offset - base) / 4) * 4;
  if (base === offset && boundSize === size) return { binding, offset: 0 };
  return { binding: { buffer, offset: base, size: boundSize }, offset: rest };
}

/**
 * The fewest whole blocks k such that offset - k * blockBytes is a multiple of `align` and not
 * negative, or null: if one exists it is below `align`, since k and k + align give the same residue.
 */
function blockStart(offset: number, blockBytes: number, align: number): number | null {
  for (let k = 0; k < align && k * blockBytes <= offset; k++) if ((offset - k * blockBytes) % align === 0) return k;
  return null;
}

/**
 * One binding over ranges of one buffer and each range's start in elements inside it (the binding
 * starts at an aligned offset, as `operand` binds it). A block-format range must start a whole
 * number of blocks after the first.
 */
export function sharedOperand(
  gpu: Gpu,
  ranges: readonly Binding[],
  name: string,
  format: WeightFormat = 'f32',
): { binding: Binding; offsets: number[] } {
  const all = ranges.map(asRange);
  const buffer = all[0].buffer;
  if (all.some((r) => r.buffer !== buffer)) throw new Error(`matmulXWtGroups: the groups' ${name} must be ranges of one buffer`);
  const start = Math.min(...all.map((r) => r.offset));
  const end = Math.max(...all.map((r) => r.offset + r.size));
  const union = operand(gpu, { buffer, offset: start, size: end - start }, 0, name, format);
  const offsets = all.map((r) => {
    const bytes = r.offset - start;
    if (!isBlockFormat(format)) return union.offset + bytes / bytesPerWeight(format);
    const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
    if (bytes % blockBytes !== 0) throw new Error(`matmulXWtGroups: ${name} offset ${r.offset} is no whole number of ${format} blocks`);
    return union.offset + (bytes / blockBytes) * blockSize;
  });
  return { binding: union.binding, offsets };
}

import { describe, it } from 'vitest';
import { dequantize } from '../../src/gguf/quants';
import { embeddingForward } from '../../src/kernels/embedding';
import { asWords, BLOCK_FORMATS, BLOCK_LAYOUTS } from '../../src/model/weight-format';
import { testGpu } from '../helpers/gpu';
import { randomArray, toF64 } from '../helpers/numeric';
import { checkOp } from '../helpers/op-test';
import { packWeights } from '../helpers/packed-weights';
import { randomBlocks } from '../helpers/random-blocks';
import { embeddingForwardRef } from '../reference/embedding';
import { roundAllTo } from '../reference/weight-rounding';

// 2 x 5 tokens, 37 vocabulary rows of 67 channels; the first and last rows are used on purpose.
const V = 37;
const C = 67;
const ids = Uint32Array.from([0, 5, 36, 19, 20, 20, 1, 35, 19, 7]);
const M = ids.length;
const table = randomArray(V * C, 3);
const expected = embeddingForwardRef(ids, toF64(table), C);
const SENTINEL = 12345;

/** The expected output after looking up only rows [start, start + count): other tokens' rows untouched. */
function afterPiece(start: number, count: number): Float64Array {
  const out = new Float64Array(M * C).fill(SENTINEL);
  for (let m = 0; m < M; m++) if (ids[m] >= start && ids[m] < start + count) out.set(expected.subarray(m * C, (m + 1) * C), m * C);
  return out;
}

const CASES = [
  { name: 'looks rows up in the whole table', pieces: [[0, V]], start: undefined, values: expected },
  {
    name: 'a table split in two pieces gives the same result',
    pieces: [
      [0, 20],
      [20, V - 20],
    ],
    start: undefined,
    values: expected,
  },
  // Rows of `out` whose id is outside the piece are left as they were.
  { name: 'one piece writes only its rows', pieces: [[0, 20]], start: SENTINEL, values: afterPiece(0, 20) },
  { name: 'the second piece writes only its rows', pieces: [[20, V - 20]], start: SENTINEL, values: afterPiece(20, V - 20) },
];

describe('embedding kernel', () => {
  for (const { name, pieces, start, values } of CASES) {
    it(name, async () => {
      const inputs: Record<string, Uint32Array | Float32Array> = { ids };
      for (const [i, [rowStart, rowCount]] of pieces.entries()) {
        inputs[`table${i}`] = table.subarray(rowStart * C, (rowStart + rowCount) * C);
      }
      await checkOp(await testGpu(), {
        inputs,
        outputs: { out: start === undefined ? M * C : new Float32Array(M * C).fill(start) },
        run: (gpu, t) => {
          for (const [i, [rowStart, rowCount]] of pieces.entries()) {
            embeddingForward(gpu, { ids: t.ids, table: t[`table${i}`], out: t.out }, { M, C, rowStart, rowCount });
          }
        },
        expected: { out: { values, atol: 0, rtol: 0 } },
      });
    });
  }
});

describe('embedding kernel with a 16-bit table', () => {
  const whole = [[0, V]];
  const split = [
    [0, 19],
    [19, V - 19],
  ];
  for (const format of ['bf16', 'f16'] as const) {
    // C = 67 is odd, so every other row starts in the middle of a u32 word; each piece is packed on
    // its own as the engine uploads it.
    it(`${format}: looks up the rounded rows exactly, whole and in two pieces`, async () => {
      const rounded = embeddingForwardRef(ids, roundAllTo(format, table), C);
      for (const pieces of [whole, split]) {
        const inputs: Record<string, Uint32Array> = { ids };
        for (const [i, [rowStart, rowCount]] of pieces.entries()) {
          inputs[`table${i}`] = packWeights(table.subarray(rowStart * C, (rowStart + rowCount) * C), format);
        }
        await checkOp(await testGpu(), {
          inputs,
          outputs: { out: M * C },
          run: (gpu, t) => {
            for (const [i, [rowStart, rowCount]] of pieces.entries()) {
              embeddingForward(gpu, { ids: t.ids, table: t[`table${i}`], out: t.out }, { M, C, rowStart, rowCount }, { format });
            }
          },
          expected: { out: { values: rounded, atol: 0, rtol: 0 } },
        });
      }
    });
  }
});

describe('embedding kernel with a GGUF block-format table (decoded on the GPU)', () => {
  const split = [
    [0, 19],
    [19, V - 19],
  ];
  for (const format of BLOCK_FORMATS) {
    // Rows of two blocks; each piece is its rows' blocks, as the engine uploads them.
    it(`${format}: looks up the rows the CPU dequantizer gives, in two pieces`, async () => {
      const { blockSize, blockBytes } = BLOCK_LAYOUTS[format];
      const width = 2 * blockSize;
      const rowBytes = 2 * blockBytes;
      const { bytes, type } = randomBlocks(format, V * width, 5);
      const values = embeddingForwardRef(ids, toF64(dequantize(type, bytes, V * width)), width);
      const inputs: Record<string, Uint32Array> = { ids };
      for (const [i, [rowStart, rowCount]] of split.entries()) {
        inputs[`table${i}`] = asWords(bytes.slice(rowStart * rowBytes, (rowStart + rowCount) * rowBytes));
      }
      await checkOp(await testGpu(), {
        inputs,
        outputs: { out: M * width },
        run: (gpu, t) => {
          for (const [i, [rowStart, rowCount]] of split.entries()) {
            embeddingForward(gpu, { ids: t.ids, table: t[`table${i}`], out: t.out }, { M, C: width, rowStart, rowCount }, { format });
          }
        },
        expected: { out: { values, atol: 0, rtol: 1e-6 } },
      });
    });
  }
});

describe('embedding kernel, accumulating (the cross-entropy gradient subtracts target rows with it)', () => {
  it('adds alpha times the rows of the tokens in each piece and leaves the other rows as they were', async () => {
    const prior = randomArray(M * C, 9);
    const alpha = -0.37;
    const values = Float64Array.from(prior, (v, i) => v + alpha * expected[i]);
    // Ids past the vocabulary (the cross-entropy's ignored targets, -100 as u32) are skipped.
    const withIgnored = Uint32Array.from(ids, (id, m) => (m === 3 ? 0xffffff9c : id));
    for (let c = 0; c < C; c++) values[3 * C + c] = prior[3 * C + c];
    await checkOp(await testGpu(), {
      inputs: { ids: withIgnored, table0: table.subarray(0, 20 * C), table1: table.subarray(20 * C) },
      outputs: { out: prior },
      run: (gpu, t) => {
        embeddingForward(gpu, { ids: t.ids, table: t.table0, out: t.out }, { M, C, rowStart: 0, rowCount: 20 }, { alpha });
        embeddingForward(gpu, { ids: t.ids, table: t.table1, out: t.out }, { M, C, rowStart: 20, rowCount: V - 20 }, { alpha });
      },
      expected: { out: { values, atol: 1e-6, rtol: 1e-6 } },
    });
  });
});

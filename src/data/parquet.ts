/**
 * Parquet datasets (what the Hugging Face Hub converts every dataset to), read with hyparquet:
 * each row becomes an object of its columns, then a dataset row like a JSONL line (rows.ts).
 * Nested columns (a `messages` list of `{role, content}` structs, ShareGPT `conversations`) come
 * out as arrays of objects, as the row shapes expect. hyparquet reads uncompressed and Snappy
 * files, which is what the Hub and pandas/pyarrow write by default; other codecs are refused
 * with the codec's name.
 */
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import type { ImportReport } from './import-report';
import { parseRowObjects } from './rows';

const MAGIC = [0x50, 0x41, 0x52, 0x31]; // "PAR1"

export class ParquetReadError extends Error {
  override name = 'ParquetReadError';
}

/** Parquet files start and end with "PAR1". */
export function isParquet(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false;
  return MAGIC.every((b, i) => bytes[i] === b && bytes[bytes.length - 4 + i] === b);
}

export async function parseParquetBytes(bytes: Uint8Array): Promise<ImportReport> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    const metadata = parquetMetadata(buffer);
    rows = await parquetReadObjects({ file: buffer, metadata });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ParquetReadError(
      `this Parquet file cannot be read (${message}). webtune reads uncompressed and Snappy-compressed Parquet; ` +
        'write it again with one of those, or export the rows as JSONL.',
      { cause: error },
    );
  }
  return parseRowObjects(rows);
}

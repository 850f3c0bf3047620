/**
 * Errors of GGUF reading. A GGUF file usually comes from somewhere else (Ollama's store, a Hub
 * download), so a damaged or hostile one must be refused with a message that names the problem
 * and the file, before anything large is allocated or read. Unsupported but valid models (another
 * architecture, a quantization webtune does not read) raise the model loader's
 * UnsupportedModelError instead, as config.json problems do.
 */
import { ModelLoadError } from '../model/errors';

/** What is wrong with the file, for callers and tests that branch on it. */
export type GgufProblem =
  | 'not-gguf'
  | 'version'
  | 'big-endian'
  | 'truncated'
  | 'string-length'
  | 'array-count'
  | 'too-many-entries'
  | 'value-type'
  | 'duplicate'
  | 'alignment'
  | 'tensor-name'
  | 'dims'
  | 'unknown-type'
  | 'row-size'
  | 'tensor-past-end'
  | 'misaligned'
  | 'overlap'
  | 'shards';

export class GgufFormatError extends ModelLoadError {
  override name = 'GgufFormatError';
  constructor(
    readonly file: string,
    readonly problem: GgufProblem,
    readonly detail: string,
  ) {
    super(`${file} is not a valid GGUF file: ${detail}. The file is damaged, incomplete or not a GGUF model; download or export it again.`);
  }
}

/** The shards given do not form one model (missing, repeated or foreign shards). */
export class GgufShardError extends ModelLoadError {
  override name = 'GgufShardError';
  readonly problem: GgufProblem = 'shards';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}. Pick all the files of the split model (name-00001-of-0000N.gguf ... name-0000N-of-0000N.gguf).`);
  }
}

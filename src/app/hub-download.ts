/**
 * One model file downloaded as a stream into the download store (src/storage/download-store.ts):
 * written chunk by chunk as it arrives, hashed on the way (streaming SHA-256, @noble/hashes: Web
 * Crypto digests whole buffers only), checked against the Hub's listing when there is one, and
 * resumed with an HTTP Range request from its last stored chunk after an interruption or a reload.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { ModelLoadError } from '../model/errors';
import type { RangedFile } from '../model/file-source';
import { DownloadBusyError, type DownloadStore, type DownloadWriter } from '../storage/download-store';
import { StorageFullError } from '../storage/errors';
import { blockedSince, redirectRefusal } from '../site/csp';
import type { HubFileInfo } from './hub-files';

export class HubDownloadError extends ModelLoadError {
  override name = 'HubDownloadError';
}

/** A downloaded file that is not what the Hub lists: it was not kept. */
export class HubIntegrityError extends HubDownloadError {
  override name = 'HubIntegrityError';
  constructor(
    readonly file: string,
    readonly what: 'sha256' | 'git blob id' | 'size',
    readonly expected: string,
    readonly actual: string,
    label: string,
  ) {
    super(
      `${file} of ${label} does not match the Hub's file list: its ${what} is ${actual} but the Hub lists ${expected}. ` +
        'It was damaged or changed on the way and was not kept; load the model again to download it anew.',
    );
  }
}

/** Where a model's files come from: its cache key, how messages name it, and each file's URL. */
export interface RemoteFolder {
  cacheId: string;
  label: string;
  revision: string;
  url(path: string): string;
  /** The host named when a request fails. */
  host: string;
  missing(path: string): string;
  unauthorized: string;
}

export interface DownloadContext {
  store: DownloadStore;
  folder: RemoteFolder;
  fetcher: typeof fetch;
  onProgress: (loaded: number, total: number | null) => void;
}

/** The digests a file is checked by: its sha256 always, its git blob id when that is all the Hub lists. */
function digests(expected: HubFileInfo | null) {
  const whole = sha256.create();
  const size = expected?.size;
  const git = expected?.gitOid && !expected.sha256 && size !== null && size !== undefined ? sha1.create() : null;
  git?.update(utf8ToBytes(`blob ${size}\0`));
  return {
    update(bytes: Uint8Array) {
      whole.update(bytes);
      git?.update(bytes);
    },
    finish: () => ({ sha256: bytesToHex(whole.digest()), gitOid: git ? bytesToHex(git.digest()) : null }),
  };
}

async function request(ctx: DownloadContext, path: string, offset: number): Promise<Response> {
  const { folder } = ctx;
  const started = performance.now();
  try {
    return await ctx.fetcher(folder.url(path), offset > 0 ? { headers: { Range: `bytes=${offset}-` } } : undefined);
  } catch (error) {
    // The URL itself passed connectRefusal (the Hub, or a host the policy allows), so a block is a redirect elsewhere.
    if (await blockedSince(started)) {
      throw new HubDownloadError(
        `${redirectRefusal(folder.host, path)} Download the model folder yourself and pick it as a local folder.`,
        { cause: error },
      );
    }
    throw new HubDownloadError(
      `Could not reach ${folder.host} for ${path} (${(error as Error).message}). Check the connection, or download the ` +
        'model folder yourself and pick it as a local folder.',
      { cause: error },
    );
  }
}

/** The file, or null when it does not exist and is optional. `expected` is the Hub's listing of it, when there is one. */
export async function downloadFile(
  ctx: DownloadContext,
  path: string,
  expected: HubFileInfo | null,
  required: boolean,
): Promise<RangedFile | null> {
  const { store, folder } = ctx;
  let kept = await store.partial(path);
  if (kept && expected?.size != null && kept.size >= expected.size) kept = null;
  let hash = digests(expected);
  // The hash state of the kept part is not stored: reading it again costs a disk read, once per resume.
  for (let at = 0; kept && at < kept.size; at += store.chunkBytes)
    hash.update(await kept.read(at, Math.min(kept.size, at + store.chunkBytes)));
  let offset = kept?.size ?? 0;

  let response = await request(ctx, path, offset);
  // 416: the kept part no longer fits the file (it changed on the server): start over.
  if (offset > 0 && response.status === 416) {
    hash = digests(expected);
    offset = 0;
    response = await request(ctx, path, 0);
  }
  if (response.status === 404) {
    if (!required) return null;
    throw new HubDownloadError(folder.missing(path));
  }
  if (response.status === 401 || response.status === 403) throw new HubDownloadError(folder.unauthorized);
  if (!response.ok || !response.body) {
    throw new HubDownloadError(`Downloading ${path} of ${folder.label} failed: HTTP ${response.status} ${response.statusText}.`);
  }
  if (offset > 0 && response.status !== 206) {
    // The server ignored the Range header and sends the whole file: the kept part is dropped and
    // the file downloaded from its start.
    hash = digests(expected);
    offset = 0;
  }
  // A 206 must start where we asked; Content-Range may be hidden from a cross-origin page (it is
  // not CORS-safelisted), and then the final size and hash checks are what catches a wrong answer.
  const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
  if (offset > 0 && range && Number(range[1]) !== offset) {
    throw new HubDownloadError(`${folder.host} answered ${path} from byte ${range[1]} instead of ${offset}; load the model again.`);
  }
  // Content-Length counts encoded bytes when the response is compressed: only the listing's size then.
  const length = Number(response.headers.get('content-length'));
  const encoded = (response.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = expected?.size ?? (Number.isFinite(length) && length > 0 && !encoded ? offset + length : null);

  const writer = await store.writer(path, offset);
  const loaded = await receive(ctx, path, response.body, writer, hash.update, total);
  if (total !== null && loaded < total) {
    await writer.keep();
    throw interrupted(folder, path, loaded, total, 'the connection ended early');
  }
  const { sha256: actual, gitOid } = hash.finish();
  const refuse = async (what: HubIntegrityError['what'], want: string, got: string) => {
    await writer.discard();
    throw new HubIntegrityError(path, what, want, got, folder.label);
  };
  if (expected?.size != null && loaded !== expected.size) await refuse('size', `${expected.size} bytes`, `${loaded} bytes`);
  if (expected?.sha256 && actual !== expected.sha256) await refuse('sha256', expected.sha256, actual);
  if (expected?.gitOid && gitOid && gitOid !== expected.gitOid) await refuse('git blob id', expected.gitOid, gitOid);
  return (await writer.finish(actual)).file;
}

async function receive(
  ctx: DownloadContext,
  path: string,
  body: ReadableStream<Uint8Array>,
  writer: DownloadWriter,
  hash: (bytes: Uint8Array) => void,
  total: number | null,
): Promise<number> {
  const reader = body.getReader();
  let loaded = writer.written;
  let reported = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      hash(value);
      await writer.write(value);
      loaded += value.byteLength;
      // Pieces are tens of kilobytes; a message per piece would flood the page during a large download.
      if (performance.now() - reported > 100) {
        reported = performance.now();
        ctx.onProgress(loaded, total);
      }
    }
  } catch (error) {
    await writer.keep();
    if (error instanceof StorageFullError || error instanceof DownloadBusyError) throw error;
    throw interrupted(ctx.folder, path, loaded, total, (error as Error).message, error);
  }
  ctx.onProgress(loaded, total);
  return loaded;
}

function interrupted(folder: RemoteFolder, path: string, loaded: number, total: number | null, why: string, cause?: unknown) {
  const of = total === null ? '' : ` of ${total.toLocaleString('en-US')}`;
  return new HubDownloadError(
    `The download of ${path} from ${folder.host} stopped after ${loaded.toLocaleString('en-US')}${of} bytes (${why}). ` +
      'What arrived is kept: load the model again to continue from there.',
    { cause },
  );
}

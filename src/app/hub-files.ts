/**
 * The Hub's file list of a model repository (`/api/models/<id>/tree/<rev>`, CORS-open like
 * `resolve`): each top-level file's size and, for files kept in LFS (safetensors, large
 * tokenizers), `lfs.oid`, the sha256 of the file itself; small files carry only `oid`, their git
 * blob id (sha1 of "blob <size>\0" and the content). The `resolve` answers also carry sizes and
 * hashes (X-Linked-Size, X-Linked-Etag), but on the 302 to the CDN, which a page's fetch follows
 * without showing it, so the list is what downloads are checked against.
 */
export interface HubFileInfo {
  path: string;
  size: number | null;
  /** Hex sha256 of the content (from `lfs.oid`), when the file is in LFS. */
  sha256: string | null;
  /** Git blob id (hex sha1), for files outside LFS. */
  gitOid: string | null;
}

interface TreeEntry {
  type?: unknown;
  path?: unknown;
  size?: unknown;
  oid?: unknown;
  lfs?: { oid?: unknown; size?: unknown };
}

const hex = (value: unknown, length: number) =>
  typeof value === 'string' && value.length === length && /^[0-9a-f]+$/.test(value) ? value : null;
const count = (value: unknown) => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null);

/** The files of a tree answer, by path; folders and malformed entries are left out. */
export function parseHubTree(json: unknown): Map<string, HubFileInfo> {
  const files = new Map<string, HubFileInfo>();
  if (!Array.isArray(json)) return files;
  for (const entry of json as TreeEntry[]) {
    if (entry?.type !== 'file' || typeof entry.path !== 'string') continue;
    const lfs = entry.lfs && typeof entry.lfs === 'object' ? entry.lfs : null;
    const sha256 = lfs ? hex(lfs.oid, 64) : null;
    files.set(entry.path, {
      path: entry.path,
      size: count(lfs?.size) ?? count(entry.size),
      sha256,
      gitOid: lfs ? null : hex(entry.oid, 40),
    });
  }
  return files;
}

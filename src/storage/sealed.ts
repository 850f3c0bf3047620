/**
 * Tensor records with their checksums: `seal…` adds them before a write, `unseal…` checks them
 * after a read and returns the record as the rest of webtune knows it (without them), or throws
 * DamagedRecordError naming the record and the tensor. Records from before version 3 carry no
 * checksum and are returned as they are: they were written by an older webtune, and there is
 * nothing to compare them with.
 */
import { checksumOf, checksumsOf } from './checksum';
import { DamagedRecordError } from './errors';
import type { AdapterRecord, CheckpointRecord, StoredAdapter, StoredCheckpoint } from './records';

export async function sealCheckpoint(checkpoint: CheckpointRecord): Promise<StoredCheckpoint> {
  const [params, m, v] = await checksumsOf([checkpoint.params, checkpoint.m, checkpoint.v]);
  return { ...checkpoint, checksums: { params, m, v } };
}

/** `runName` names the run in the message, as the page shows it. */
export async function unsealCheckpoint(stored: StoredCheckpoint, runName: string): Promise<CheckpointRecord> {
  const { checksums, ...checkpoint } = stored;
  if (!checksums) return checkpoint;
  for (const part of ['params', 'm', 'v'] as const) {
    if ((await checksumOf(checkpoint[part])) !== checksums[part]) {
      throw new DamagedRecordError(
        'checkpoint',
        `${checkpoint.runId}@${checkpoint.step}`,
        `The checkpoint at step ${checkpoint.step} of run "${runName}"`,
        PART_NAMES[part],
        'Resume from an older checkpoint of the run, or start it again.',
      );
    }
  }
  return checkpoint;
}

const PART_NAMES = { params: 'adapter weights', m: 'AdamW first moments', v: 'AdamW second moments' } as const;

export async function sealAdapter(adapter: AdapterRecord): Promise<StoredAdapter> {
  const checksums = await checksumsOf(adapter.tensors.map((t) => t.data));
  return { ...adapter, tensors: adapter.tensors.map((t, i) => ({ ...t, checksum: checksums[i] })) };
}

export async function unsealAdapter(stored: StoredAdapter): Promise<AdapterRecord> {
  const tensors = [];
  for (const { checksum, ...tensor } of stored.tensors) {
    if (checksum !== undefined && (await checksumOf(tensor.data)) !== checksum) {
      throw new DamagedRecordError(
        'adapter',
        stored.id,
        `The adapter "${stored.name}"`,
        `values of tensor ${tensor.name}`,
        'Delete it, then train it again or import it again from a file.',
      );
    }
    tensors.push(tensor);
  }
  return { ...stored, tensors };
}

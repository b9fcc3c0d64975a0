import type { ProducerRecord as Message } from '../kafka/ports';

/**
 * How far the input in flight on one input partition has got. Written in the same transaction as
 * the records it accounts for, so after a crash the last committed checkpoint and the committed
 * output always agree; the transaction that finishes the input deletes it (a tombstone) and
 * commits the input offset past it.
 */
export interface Checkpoint {
  /** The input message this is about; a checkpoint for another offset is stale and ignored. */
  offset: string;
  /** The processor's own position (JSON), handed back to it as `resumeFrom`. */
  position: unknown;
  /** Records produced for this input so far, and source rows read. */
  produced: number;
  rowsRead: number;
  /** Which input it is, for people reading the topic. */
  describe?: Record<string, unknown>;
  /** When the input was first started, and status facts gathered so far (kept across resumes). */
  startedAt?: number;
  note?: Record<string, unknown>;
  updatedAt: number;
}

/** One key per (group, input topic, partition): the next owner of the partition finds it. */
export function checkpointKey(groupId: string, topic: string, partition: number): string {
  return `${groupId}|${topic}|${partition}`;
}

/**
 * Input partition p writes to checkpoint partition p (modulo the topic's size), so that with as
 * many checkpoint partitions as input partitions each checkpoint partition has exactly one writer.
 */
export function checkpointPartition(inputPartition: number, checkpointPartitions: number): number {
  return inputPartition % Math.max(1, checkpointPartitions);
}

export function checkpointMessage(key: string, partition: number, checkpoint: Checkpoint | null): Message {
  return { key, partition, value: checkpoint === null ? null : JSON.stringify(checkpoint) };
}

/**
 * Written by a new owner, after fencing, to its checkpoint partition: once the reader has seen
 * it, it has seen every checkpoint written before it. Waiting for the partition's last stable
 * offset is not enough when another partition's producer shares the checkpoint partition: an
 * open transaction of theirs holds the stable offset back, before our own last checkpoint.
 */
export interface RestoreMarker {
  marker: string;
}

export function restoreMarkerKey(checkpointKey: string): string {
  return `${checkpointKey}#restore`;
}

export function restoreMarkerMessage(key: string, partition: number, marker: string): Message {
  return { key: restoreMarkerKey(key), partition, value: JSON.stringify({ marker } satisfies RestoreMarker) };
}

export function isRestoreMarker(value: Checkpoint | RestoreMarker | undefined): value is RestoreMarker {
  return value !== undefined && typeof (value as RestoreMarker).marker === 'string';
}

export function decodeCheckpointOrMarker(value: Buffer): Checkpoint | RestoreMarker {
  const parsed = JSON.parse(value.toString('utf8')) as Partial<RestoreMarker>;
  if (typeof parsed.marker === 'string') return { marker: parsed.marker };
  return decodeCheckpoint(value);
}

export function decodeCheckpoint(value: Buffer): Checkpoint {
  const parsed = JSON.parse(value.toString('utf8')) as Partial<Checkpoint>;
  if (typeof parsed.offset !== 'string' || typeof parsed.produced !== 'number') {
    throw new Error('not a checkpoint record');
  }
  return {
    offset: parsed.offset,
    position: parsed.position,
    produced: parsed.produced,
    rowsRead: typeof parsed.rowsRead === 'number' ? parsed.rowsRead : 0,
    describe: parsed.describe,
    startedAt: typeof parsed.startedAt === 'number' ? parsed.startedAt : undefined,
    note: parsed.note,
    updatedAt: typeof parsed.updatedAt === 'number' ? parsed.updatedAt : 0,
  };
}

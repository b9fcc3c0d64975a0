import type { Message } from 'kafkajs';

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
    updatedAt: typeof parsed.updatedAt === 'number' ? parsed.updatedAt : 0,
  };
}
